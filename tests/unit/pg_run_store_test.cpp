// Runs in the PostgreSQL store (db/run_store.hpp) against a real server: events kept in order and once,
// whole bundles stored in compressed chunks and read back byte for byte, and the fence the queue's own
// operations keep — a write of an attempt that lost its lease, or of another node, changes nothing.
#include "db/migrations.hpp"
#include "db/pg_connection.hpp"
#include "db/run_store.hpp"
#include "queue/queue_backend.hpp"
#include "unit/pg_queue_support.hpp"
#include "unit/pg_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

namespace cp {
namespace {

using test::PgServer;

struct Store {
  std::string url = PgServer::shared().fresh_database();
  db::PgConnection conn{url};
  std::unique_ptr<queue::QueueBackend> queue;
  Store() {
    db::migrate(conn);
    queue = test::pg_queue(url);
  }
  // An item claimed by `worker`, its run named `run_id`: its attempt's fence is open for that node.
  int claim(const std::string& item_id, const std::string& worker, const std::string& run_id = "") {
    queue->submit(test::pg_item(item_id));
    queue::ClaimRequest req;
    req.worker = worker;
    if (!run_id.empty()) req.name_run = [run_id](const queue::QueueItem&) { return run_id; };
    auto it = queue->claim(req);
    EXPECT_TRUE(it.has_value());
    return it ? it->current()->attempt : 0;
  }
  int64_t count(const std::string& sql) { return conn.exec(sql).integer(0, 0); }
};

db::RunPush push(const std::string& run, const std::string& item, int attempt, const std::string& worker,
                 int64_t first, int n) {
  db::RunPush p;
  p.run_id = run;
  p.fence = {item, attempt, worker};
  p.manifest = R"({"run_id":")" + run + R"(","status":"running"})";
  p.first_seq = first;
  for (int i = 0; i < n; ++i)
    p.lines.push_back(R"({"seq":)" + std::to_string(first + i) + R"(,"hash":"h)" + std::to_string(first + i) +
                      R"("})");
  if (n > 0) p.last_hash = "h" + std::to_string(first + n - 1);
  return p;
}

// Stages `files` (each chunk by chunk) then pushes `p` as the seal.
db::PushOutcome seal_with(db::RunStore& rs, db::RunPush p, const std::map<std::string, std::string>& files) {
  rs.clear_staged(p.run_id);
  for (const auto& [path, bytes] : files) {
    size_t off = 0;
    int chunk = 0;
    do {
      const size_t n = std::min(db::RunStore::kChunk, bytes.size() - off);
      rs.stage_chunk(p.run_id, path, chunk++, bytes.data() + off, n);
      off += n;
    } while (off < bytes.size());
  }
  p.seal = true;
  return rs.push(p);
}

TEST(PgRunStore, EventsAreKeptInOrderOnceEvenWhenAPushIsRepeated) {
  Store s;
  int attempt = s.claim("item-a", "w1");
  db::RunStore rs(s.conn);
  auto out = rs.push(push("run-a", "item-a", attempt, "w1", 1, 3));
  ASSERT_EQ(out.result, db::PushResult::applied);
  EXPECT_EQ(out.stored_events, 3);
  // A push repeated after a lost COMMIT overlaps what is stored: only the new line lands.
  out = rs.push(push("run-a", "item-a", attempt, "w1", 2, 3));
  ASSERT_EQ(out.result, db::PushResult::applied);
  EXPECT_EQ(out.stored_events, 4);
  // A push past the end is a gap, and says where to start again.
  out = rs.push(push("run-a", "item-a", attempt, "w1", 7, 1));
  EXPECT_EQ(out.result, db::PushResult::gap);
  EXPECT_EQ(out.stored_events, 4);
  auto lines = rs.events("run-a", 0, 100);
  ASSERT_EQ(lines.size(), 4u);
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(lines[i],
              R"({"seq":)" + std::to_string(i + 1) + R"(,"hash":"h)" + std::to_string(i + 1) + R"("})");
  auto row = rs.row("run-a");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->events_count, 4);
  EXPECT_EQ(row->worker_id, "w1");
  EXPECT_FALSE(row->sealed);
  EXPECT_EQ(s.count("SELECT count(*) FROM cp_run_events WHERE run_id = 'run-a'"), 4);
}

TEST(PgRunStore, AnotherNodeOrAnotherAttemptWritesNothing) {
  Store s;
  int attempt = s.claim("item-b", "w1");
  db::RunStore rs(s.conn);
  ASSERT_EQ(rs.push(push("run-b", "item-b", attempt, "w1", 1, 2)).result, db::PushResult::applied);
  EXPECT_EQ(rs.push(push("run-b", "item-b", attempt, "w2", 3, 5)).result, db::PushResult::fenced);
  EXPECT_EQ(rs.push(push("run-b", "item-b", attempt + 1, "w1", 3, 5)).result, db::PushResult::fenced);
  EXPECT_EQ(rs.push(push("run-x", "no-such-item", 1, "w1", 1, 5)).result, db::PushResult::fenced);
  EXPECT_EQ(s.count("SELECT count(*) FROM cp_run_events"), 2);
  EXPECT_EQ(s.count("SELECT count(*) FROM cp_runs"), 1);
}

TEST(PgRunStore, ALostLeaseClosesTheFenceAndTheNextAttemptOwnsTheItem) {
  Store s;
  int first = s.claim("item-c", "sleeper", "run-c1");
  db::RunStore rs(s.conn);
  ASSERT_EQ(rs.push(push("run-c1", "item-c", first, "sleeper", 1, 2)).result, db::PushResult::applied);
  // It had started to upload its seal when it was paused.
  rs.stage_chunk("run-c1", "artifacts/big.bin", 0, "abc", 3);
  // Another node ends the attempt of the node whose lease lapsed.
  auto lost = s.queue->requeue_lost("item-c", first, "worker sleeper lost its lease");
  ASSERT_EQ(lost.change, queue::Change::applied);
  EXPECT_EQ(s.count("SELECT count(*) FROM cp_run_files WHERE run_id = 'run-c1'"), 0)
      << "what the cut-off run had staged is gone with it";
  // The late writes of the paused node: its events and its seal are refused, nothing is stored.
  EXPECT_EQ(seal_with(rs, push("run-c1", "item-c", first, "sleeper", 3, 4), {{"seal.json", "{}"}}).result,
            db::PushResult::fenced);
  auto row = rs.row("run-c1");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->events_count, 2);
  EXPECT_FALSE(row->sealed);
  EXPECT_TRUE(row->fenced) << "the index says the run was cut off by the fence";
  EXPECT_EQ(s.count("SELECT count(*) FROM cp_run_files WHERE NOT staged"), 0);
  EXPECT_TRUE(rs.file_paths("run-c1").empty()) << "staged files are nobody's until a seal takes them";
  // The next attempt, on another node, writes and seals.
  int second = s.claim("item-c", "taker", "run-c2");
  EXPECT_EQ(second, first + 1);
  ASSERT_EQ(rs.push(push("run-c2", "item-c", second, "taker", 1, 3)).result, db::PushResult::applied);
  ASSERT_EQ(seal_with(rs, push("run-c2", "item-c", second, "taker", 4, 0), {{"seal.json", R"({"ok":true})"}})
                .result,
            db::PushResult::applied);
  EXPECT_TRUE(rs.row("run-c2")->sealed);
  // And the old attempt stays fenced off even though the item is claimed again.
  EXPECT_EQ(rs.push(push("run-c1", "item-c", first, "sleeper", 3, 1)).result, db::PushResult::fenced);
}

TEST(PgRunStore, TheNextAttemptsClaimCutsOffAnEarlierRunThatWasNeverSealed) {
  Store s;
  int first = s.claim("item-f", "w1", "run-f1");
  db::RunStore rs(s.conn);
  ASSERT_EQ(rs.push(push("run-f1", "item-f", first, "w1", 1, 2)).result, db::PushResult::applied);
  // The attempt ends (its node recorded it) before its seal reached the store, and the item runs again.
  ASSERT_EQ(s.queue->finish("item-f", first, {"failure", "a test failed", ""}).change,
            queue::Change::applied);
  ASSERT_EQ(s.queue->retry("item-f", {}), queue::Change::applied);
  EXPECT_EQ(s.claim("item-f", "w2", "run-f2"), first + 1);
  auto row = rs.row("run-f1");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->fenced) << "the index says the run will never be sealed";
  EXPECT_EQ(seal_with(rs, push("run-f1", "item-f", first, "w1", 3, 0), {{"seal.json", "{}"}}).result,
            db::PushResult::fenced);
  EXPECT_FALSE(rs.row("run-f1")->sealed);
}

TEST(PgRunStore, AWriterStalledOnTheFenceRowDoesNotStallTheQueue) {
  Store s;
  int attempt = s.claim("item-g", "paused", "run-g");
  db::RunStore rs(s.conn);
  ASSERT_EQ(rs.push(push("run-g", "item-g", attempt, "paused", 1, 1)).result, db::PushResult::applied);
  // A run write of the paused node holds the fence row (paused mid-commit).
  db::PgConnection paused(s.url);
  paused.exec("BEGIN");
  paused.exec("SELECT 1 FROM cp_attempt_fences WHERE item_id = 'item-g' FOR SHARE");
  // Another node ends the paused node's attempt: that waits on the row, a few seconds at a time...
  std::thread taker(
      [&] { test::pg_queue(s.url)->requeue_lost("item-g", attempt, "worker paused lost its lease"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // ...while the rest of the queue goes on.
  auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(test::pg_queue(s.url)->submit(test::pg_item("item-other")).kind,
            queue::SubmitOutcome::Kind::queued);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(10))
      << "a submit waited for the stalled writer";
  paused.exec("ROLLBACK");
  taker.join();
  EXPECT_EQ(rs.push(push("run-g", "item-g", attempt, "paused", 2, 1)).result, db::PushResult::fenced);
}

TEST(PgRunStore, ASealedBundleComesBackByteForByteAcrossChunks) {
  Store s;
  int attempt = s.claim("item-d", "w1");
  db::RunStore rs(s.conn);
  std::string big(db::RunStore::kChunk * 2 + 12345, '\0');
  std::mt19937 rng(7);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 3 == 0 ? rng() : i % 251);
  ASSERT_EQ(rs.push(push("run-d", "item-d", attempt, "w1", 1, 1)).result, db::PushResult::applied);
  ASSERT_EQ(seal_with(rs, push("run-d", "item-d", attempt, "w1", 2, 0),
                      {{"artifacts/big.bin", big},
                       {"empty.txt", ""},
                       {"reports/task_result.json", R"({"status":"success"})"}})
                .result,
            db::PushResult::applied);
  EXPECT_EQ(s.count("SELECT count(*) FROM cp_run_files WHERE path = 'artifacts/big.bin' AND NOT staged"), 3);
  EXPECT_EQ(s.count("SELECT count(*) FROM cp_run_files WHERE staged"), 0);
  EXPECT_LT(s.count("SELECT sum(octet_length(data)) FROM cp_run_files"), static_cast<int64_t>(big.size()))
      << "chunks are stored compressed";
  EXPECT_EQ(rs.file_paths("run-d"),
            (std::vector<std::string>{"artifacts/big.bin", "empty.txt", "reports/task_result.json"}));
  EXPECT_EQ(rs.file("run-d", "artifacts/big.bin"), big);
  EXPECT_EQ(rs.file("run-d", "empty.txt"), std::string());
  EXPECT_FALSE(rs.file("run-d", "nope"));
  auto row = rs.row("run-d");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->sealed);
  // Index rows come back in change order after a cursor.
  auto changed = rs.changed_since(0, 10);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_TRUE(rs.changed_since(changed[0].change, 10).empty());
}

TEST(PgRunStore, AReaderFollowingTheChangeCounterNeverSkipsAWriteThatCommitsLate) {
  Store s;
  int a1 = s.claim("item-e1", "w1"), a2 = s.claim("item-e2", "w2");
  db::RunStore rs(s.conn);
  ASSERT_EQ(rs.push(push("run-e1", "item-e1", a1, "w1", 1, 1)).result, db::PushResult::applied);
  const int64_t seen = rs.changed_since(0, 10).back().change;
  // A write in flight holds the next change of run-e1 and has not committed.
  db::PgConnection slow(s.url);
  slow.exec("BEGIN");
  slow.exec(
      "WITH c AS (UPDATE cp_run_meta SET change = change + 1 WHERE id = 1 RETURNING change) "
      "UPDATE cp_runs SET change = (SELECT change FROM c) WHERE run_id = 'run-e1'");
  // Another write starts after it and would take a later change: it cannot commit before the first.
  std::thread fast([&] {
    db::PgConnection c(s.url);
    db::RunStore other(c);
    EXPECT_EQ(other.push(push("run-e2", "item-e2", a2, "w2", 1, 1)).result, db::PushResult::applied);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(rs.changed_since(seen, 10).empty()) << "a later change is visible before an earlier one";
  slow.exec("COMMIT");
  fast.join();
  auto rows = rs.changed_since(seen, 10);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].run_id, "run-e1");
  EXPECT_EQ(rows[1].run_id, "run-e2");
  EXPECT_LT(rows[0].change, rows[1].change);
}

}  // namespace
}  // namespace cp
