// The queue backend contract (queue/queue_backend.hpp), run against every backend in kBackends: the life
// of an item (submit -> claim -> start -> finish), the retry policy and retry, cancel, hold/release, list,
// compaction, watch, and claimers in threads and in processes that never get the same item. Each case
// opens several clients of one queue, as serve and `cp-host queue` do. The JSONL-only tests at the end
// cover what is particular to queue.jsonl.
#include "queue/queue_backend.hpp"
#include "db/migrations.hpp"
#include "queue/log_queue_backend.hpp"
#include "queue/queue_store.hpp"
#include "unit/pg_server.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace cp::queue {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct BackendCase {
  std::string name;
  // A new client of the queue that `scratch` (a fresh folder per test) names: each call is another
  // connection to the same queue.
  std::function<std::unique_ptr<QueueBackend>(const fs::path& scratch)> open;
};

std::unique_ptr<QueueBackend> open_jsonl(const fs::path& scratch) {
  BackendOptions o;
  o.root = scratch;
  o.kind = "jsonl";
  return open_queue_backend(o);
}

// One database per test (its scratch folder names it), migrated before its first client opens it.
std::unique_ptr<QueueBackend> open_postgres(const fs::path& scratch) {
  static std::map<fs::path, std::string> databases;
  static std::mutex mu;
  std::string conninfo;
  {
    std::lock_guard<std::mutex> l(mu);
    auto& db = databases[scratch];
    if (db.empty()) {
      db = cp::test::PgServer::shared().fresh_database();
      cp::db::PgConnection c(db);
      cp::db::migrate(c);
    }
    conninfo = db;
  }
  BackendOptions o;
  o.kind = "postgres";
  o.store = conninfo;
  return open_queue_backend(o);
}

void PrintTo(const BackendCase& c, std::ostream* os) {
  *os << c.name;
}

// Every backend passes the same contract: queue.jsonl and PostgreSQL (a real server, pg_server.hpp).
const BackendCase kBackends[] = {{"jsonl", open_jsonl}, {"postgres", open_postgres}};

NewItem item(const std::string& id, int priority = 5, const std::string& pack = "low") {
  NewItem n;
  n.item_id = id;
  n.task_id = "task-" + id;
  n.pack = pack;
  n.contract_path = "/c/" + id + ".json";
  n.repo = "/repo";
  n.priority = priority;
  return n;
}

// An item whose claim locks `paths` of `repo`.
NewItem locking(const std::string& id, std::vector<std::string> paths, const std::string& repo = "/repo") {
  NewItem n = item(id);
  n.repo = repo;
  n.lock_paths = std::move(paths);
  return n;
}

ClaimRequest any_slot(int64_t now = 0) {
  ClaimRequest r;
  r.limits.global = 1000;
  r.now = now;
  return r;
}

class QueueBackendContract : public ::testing::TestWithParam<BackendCase> {
 protected:
  std::unique_ptr<QueueBackend> open() { return GetParam().open(dir_.path()); }

  const QueueItem* find(QueueBackend& b, const std::string& id) {
    snapshot_ = b.list();
    return snapshot_->state.find(id);
  }

  cp::test::TempDir dir_;
  std::shared_ptr<const Snapshot> snapshot_;
};

TEST_P(QueueBackendContract, SubmitClaimStartFinish) {
  auto q = open();
  auto other = open();
  SubmitOutcome s = q->submit(item("a"));
  ASSERT_EQ(s.kind, SubmitOutcome::Kind::queued);
  EXPECT_EQ(s.item.item_id, "a");
  EXPECT_EQ(s.item.state, ItemState::queued);
  EXPECT_EQ(other->submit(item("a")).kind, SubmitOutcome::Kind::duplicate) << "an id is recorded once";
  NewItem orphan = item("orphan");
  orphan.depends_on = {"nobody"};
  SubmitOutcome o = q->submit(orphan);
  EXPECT_EQ(o.kind, SubmitOutcome::Kind::missing_dependency);
  EXPECT_EQ(o.missing, "nobody");
  EXPECT_EQ(find(*q, "orphan"), nullptr) << "a refused submit records nothing";

  std::optional<QueueItem> c = other->claim(any_slot());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->item_id, "a");
  EXPECT_EQ(c->state, ItemState::claimed);
  ASSERT_EQ(c->attempts.size(), 1u);
  EXPECT_EQ(c->current()->attempt, 1);
  EXPECT_EQ(c->contract_path, "/c/a.json");
  EXPECT_FALSE(q->claim(any_slot()).has_value()) << "a claimed item is not claimed again";
  ASSERT_NE(find(*q, "a"), nullptr);
  EXPECT_EQ(find(*q, "a")->state, ItemState::claimed) << "the other client sees the claim";

  EXPECT_EQ(q->start("a", 2, "r1"), Change::refused) << "not the claimed attempt";
  EXPECT_EQ(q->start("a", 1, "r1"), Change::applied);
  EXPECT_EQ(other->start("a", 1, "r1"), Change::unchanged);
  EXPECT_EQ(q->start("nope", 1, "r1"), Change::not_found);
  const QueueItem* it = find(*other, "a");
  ASSERT_NE(it, nullptr);
  EXPECT_EQ(it->state, ItemState::running);
  EXPECT_EQ(it->current()->run_id, "r1");

  EXPECT_EQ(q->finish("a", 2, {"success", "", ""}).change, Change::refused);
  FinishOutcome f = q->finish("a", 1, {"success", "all gates passed", ""});
  EXPECT_EQ(f.change, Change::applied);
  EXPECT_FALSE(f.retried);
  EXPECT_EQ(other->finish("a", 1, {"error", "late", ""}).change, Change::unchanged) << "ended once";
  EXPECT_EQ(q->finish("nope", 1, {"success", "", ""}).change, Change::not_found);
  it = find(*other, "a");
  ASSERT_NE(it, nullptr);
  EXPECT_EQ(it->state, ItemState::done);
  EXPECT_EQ(it->status, "success");
  EXPECT_EQ(it->reason, "all gates passed");
  EXPECT_EQ(it->current()->run_id, "r1");
  EXPECT_FALSE(q->claim(any_slot()).has_value());
}

TEST_P(QueueBackendContract, ClaimNamesTheRunInTheSameStep) {
  auto q = open();
  q->submit(item("a"));
  int calls = 0;
  ClaimRequest r = any_slot();
  r.name_run = [&](const QueueItem& it) {
    ++calls;
    return "run-of-" + it.task_id;
  };
  std::optional<QueueItem> c = q->claim(r);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c->state, ItemState::running);
  EXPECT_EQ(c->current()->run_id, "run-of-task-a");
  EXPECT_EQ(open()->start("a", 1, "run-of-task-a"), Change::unchanged);
  EXPECT_FALSE(q->claim(r).has_value());
  EXPECT_EQ(calls, 1) << "nothing to claim: no run is named";
}

TEST_P(QueueBackendContract, ClaimTakesRunOrderWithinTheLimits) {
  auto q = open();
  q->submit(item("low", 1, "p1"));
  q->submit(item("high", 9, "p1"));
  q->submit(item("mid", 5, "p2"));
  q->submit(item("mid2", 5, "p2"));
  NewItem later = item("later", 9, "p2");
  later.run_after = "2999-01-01T00:00:00Z";
  q->submit(later);
  NewItem child = item("child", 9, "p2");
  child.depends_on = {"low"};
  q->submit(child);

  ClaimRequest r;
  r.limits.global = 2;
  r.limits.per_pack["p2"] = 1;
  std::vector<std::string> got;
  while (auto c = q->claim(r)) got.push_back(c->item_id);
  EXPECT_EQ(got, (std::vector<std::string>{"high", "mid"})) << "priority, then FIFO, within the limits";
  r.limits.global = 10;
  got.clear();
  while (auto c = q->claim(r)) got.push_back(c->item_id);
  EXPECT_EQ(got, (std::vector<std::string>{"low"})) << "p2 is at its limit; later waits; child waits for low";
  r.limits.per_pack.clear();
  got.clear();
  while (auto c = q->claim(r)) got.push_back(c->item_id);
  EXPECT_EQ(got, (std::vector<std::string>{"mid2"}));
  r.now = parse_iso_ms("2999-01-01T00:00:01Z");
  std::optional<QueueItem> c = q->claim(r);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->item_id, "later") << "eligible once its time has come";
  q->finish("low", 1, {"success", "", ""});
  c = q->claim(any_slot());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->item_id, "child") << "eligible once its dependency succeeded";
}

TEST_P(QueueBackendContract, FinishAppliesTheRetryPolicy) {
  auto q = open();
  NewItem n = item("a");
  n.max_retries = 1;
  n.backoff_sec = 10;
  q->submit(n);
  ASSERT_TRUE(q->claim(any_slot()).has_value());
  int64_t before = now_ms();
  FinishOutcome f = q->finish("a", 1, {"timeout", "wall time", ""});
  EXPECT_EQ(f.change, Change::applied);
  ASSERT_TRUE(f.retried);
  int64_t after = parse_iso_ms(f.run_after);
  EXPECT_GE(after, before + 10000);
  EXPECT_LE(after, now_ms() + 10000);
  const QueueItem* it = find(*open(), "a");
  ASSERT_NE(it, nullptr);
  EXPECT_EQ(it->state, ItemState::queued);
  EXPECT_EQ(it->run_after, f.run_after);
  EXPECT_FALSE(q->claim(any_slot()).has_value()) << "not before the backoff";
  std::optional<QueueItem> c = q->claim(any_slot(after + 1));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->current()->attempt, 2);
  f = q->finish("a", 2, {"error", "crashed", "last lines"});
  EXPECT_EQ(f.change, Change::applied);
  EXPECT_FALSE(f.retried) << "no attempts left";
  it = find(*q, "a");
  EXPECT_EQ(it->state, ItemState::done);
  EXPECT_EQ(it->status, "error");
  EXPECT_EQ(it->error, "last lines");
  EXPECT_EQ(it->attempts.size(), 2u);
}

TEST_P(QueueBackendContract, RetryQueuesAnEndedItemAgain) {
  auto q = open();
  q->submit(item("a"));
  q->submit(item("gone"));
  ASSERT_TRUE(q->claim(any_slot()).has_value());
  EXPECT_EQ(q->retry("a", {}), Change::refused) << "still claimed";
  FinishOutcome f = q->finish("a", 1, {"failure", "tests failed", ""});
  EXPECT_FALSE(f.retried) << "a failure is not retried by the policy";
  EXPECT_EQ(q->retry("a", {"", "operator asked"}), Change::applied);
  EXPECT_EQ(open()->retry("a", {}), Change::unchanged) << "already waiting";
  const QueueItem* it = find(*q, "a");
  ASSERT_NE(it, nullptr);
  EXPECT_EQ(it->state, ItemState::queued);
  EXPECT_TRUE(it->status.empty());
  std::optional<QueueItem> c = q->claim(any_slot());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->item_id, "a");
  EXPECT_EQ(c->current()->attempt, 2);
  q->cancel("gone", "", "no");
  EXPECT_EQ(q->retry("gone", {}), Change::refused) << "a cancelled item stays cancelled";
  EXPECT_EQ(q->retry("nope", {}), Change::not_found);
}

TEST_P(QueueBackendContract, ANulInAReasonOrAnErrorIsKeptAsAReplacementCharacter) {
  // A child's last output lines and an API caller's reason may hold a NUL; no log may refuse the operation
  // for it (PostgreSQL's jsonb holds no U+0000), or the attempt would never end.
  auto q = open();
  q->submit(item("a"));
  q->submit(item("b"));
  ASSERT_TRUE(q->claim(any_slot()).has_value());  // "a"
  const std::string nul("x\0y", 3);
  EXPECT_EQ(q->finish("a", 1, {"error", "died: " + nul, "last line " + nul}).change, Change::applied);
  EXPECT_EQ(q->cancel("b", "ops", "why " + nul), CancelOutcome::cancelled);
  auto s = open()->list();
  EXPECT_EQ(s->state.find("a")->reason, "died: x\xEF\xBF\xBDy");
  EXPECT_EQ(s->state.find("a")->error, "last line x\xEF\xBF\xBDy");
  EXPECT_EQ(s->state.find("b")->reason, "why x\xEF\xBF\xBDy");
  EXPECT_TRUE(s->problems.empty());
}

TEST_P(QueueBackendContract, CancelEndsAWaitingItemAndAsksARunningOne) {
  auto q = open();
  auto other = open();
  q->submit(item("run", 9));
  NewItem w = item("wait", 1);
  w.max_retries = 3;
  q->submit(w);
  NewItem r = item("retry", 1);
  r.max_retries = 3;
  ASSERT_TRUE(q->claim(any_slot()).has_value());  // "run"
  EXPECT_EQ(other->cancel("wait", "ops", "not needed"), CancelOutcome::cancelled);
  EXPECT_EQ(q->cancel("wait", "ops", "again"), CancelOutcome::already_ended);
  const QueueItem* it = find(*q, "wait");
  ASSERT_NE(it, nullptr);
  EXPECT_EQ(it->state, ItemState::cancelled);
  EXPECT_EQ(it->reason, "not needed");

  EXPECT_EQ(other->cancel("run", "ops", "stop"), CancelOutcome::requested);
  uint64_t v = q->version();
  EXPECT_EQ(q->cancel("run", "ops", "stop"), CancelOutcome::requested);
  EXPECT_EQ(q->version(), v) << "asking again changes nothing";
  it = find(*q, "run");
  EXPECT_EQ(it->state, ItemState::claimed) << "a claimed item ends when its attempt does";
  EXPECT_TRUE(it->cancel_requested);
  EXPECT_EQ(q->cancel("nope", "", ""), CancelOutcome::not_found);

  // A cancel request stops the retry policy.
  q->submit(r);
  std::optional<QueueItem> c = q->claim(any_slot());
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(c->item_id, "retry");
  q->cancel("retry", "", "stop");
  FinishOutcome f = q->finish("retry", 1, {"timeout", "", ""});
  EXPECT_EQ(f.change, Change::applied);
  EXPECT_FALSE(f.retried);
  EXPECT_EQ(find(*q, "retry")->state, ItemState::done);
}

TEST_P(QueueBackendContract, HoldKeepsAnItemFromBeingClaimedUntilReleased) {
  auto q = open();
  auto other = open();
  q->submit(item("a"));
  EXPECT_EQ(q->hold("a", "ops"), Change::applied);
  EXPECT_EQ(other->hold("a", "ops"), Change::unchanged);
  EXPECT_TRUE(find(*other, "a")->held);
  EXPECT_FALSE(other->claim(any_slot()).has_value()) << "held";
  EXPECT_EQ(other->release("a", "ops"), Change::applied);
  EXPECT_EQ(q->release("a", ""), Change::unchanged);
  EXPECT_FALSE(find(*q, "a")->held);
  std::optional<QueueItem> c = q->claim(any_slot());
  ASSERT_TRUE(c.has_value());
  q->finish("a", 1, {"success", "", ""});
  EXPECT_EQ(q->hold("a", ""), Change::refused) << "ended";
  EXPECT_EQ(q->release("a", ""), Change::refused);
  EXPECT_EQ(q->hold("nope", ""), Change::not_found);
  EXPECT_EQ(q->release("nope", ""), Change::not_found);
}

TEST_P(QueueBackendContract, PriorityMovesAWaitingItemAndNotAClaimedOrEndedOne) {
  auto q = open();
  auto other = open();
  q->submit(item("low", 1));
  q->submit(item("high", 8));
  EXPECT_EQ(other->set_priority("low", 9, "ops"), Change::applied);
  EXPECT_EQ(q->set_priority("low", 9, "ops"), Change::unchanged);
  EXPECT_EQ(find(*q, "low")->priority, 9);
  std::optional<QueueItem> c = q->claim(any_slot());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->item_id, "low") << "the new priority decides the run order";
  uint64_t v = q->version();
  EXPECT_EQ(other->set_priority("low", 0, "ops"), Change::refused) << "claimed";
  EXPECT_EQ(q->version(), v) << "a refusal writes nothing";
  EXPECT_EQ(find(*q, "low")->priority, 9);
  q->cancel("high", "", "");
  EXPECT_EQ(q->set_priority("high", 1, ""), Change::refused) << "ended";
  EXPECT_EQ(q->set_priority("nope", 1, ""), Change::not_found);
}

TEST_P(QueueBackendContract, ListIsOneConsistentViewOfEveryClientsChanges) {
  auto q = open();
  auto other = open();
  EXPECT_TRUE(q->list()->state.items().empty());
  q->submit(item("a"));
  q->submit(item("b"));
  other->cancel("b", "", "no");
  auto s1 = q->list();
  EXPECT_EQ(s1->state.items().size(), 2u);
  EXPECT_EQ(s1->state.find("b")->state, ItemState::cancelled);
  EXPECT_EQ(s1->version, q->version());
  other->submit(item("c"));
  auto s2 = q->list();
  EXPECT_EQ(s2->state.items().size(), 3u);
  EXPECT_GT(s2->version, s1->version);
  EXPECT_EQ(s1->state.items().size(), 2u) << "a snapshot never changes under its reader";
}

TEST_P(QueueBackendContract, CompactDropsLongEndedItemsAndKeepsLiveOnesWithTheirDependencies) {
  auto q = open();
  auto other = open();
  q->submit(item("old"));
  q->cancel("old", "", "no");
  q->submit(item("dep"));
  ASSERT_TRUE(q->claim(any_slot()).has_value());
  q->finish("dep", 1, {"success", "", ""});
  NewItem live = item("live");
  live.depends_on = {"dep"};
  q->submit(live);
  q->hold("live", "");  // stays waiting

  EXPECT_EQ(q->compact({3600 * 1000, 0}), 0u) << "nothing ended an hour ago";
  EXPECT_EQ(q->compact({0, 1000000}), 0u) << "the live queue is small";
  EXPECT_EQ(q->list()->state.items().size(), 3u);
  EXPECT_GT(q->compact({0, 0}), 0u);
  for (auto* b : {q.get(), other.get()}) {
    auto s = b->list();
    EXPECT_EQ(s->state.find("old"), nullptr) << "ended: gone from the live queue";
    ASSERT_NE(s->state.find("dep"), nullptr) << "ended, but a live item depends on it";
    EXPECT_EQ(s->state.find("dep")->status, "success");
    ASSERT_NE(s->state.find("live"), nullptr);
    EXPECT_TRUE(s->state.find("live")->held);
  }
  EXPECT_EQ(q->compact({0, 0}), 0u) << "nothing left to drop";
  // The queue works on after compaction.
  other->release("live", "");
  std::optional<QueueItem> c = q->claim(any_slot());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->item_id, "live");
}

TEST_P(QueueBackendContract, WatchWakesOnAChangeAndTimesOutWithout) {
  auto q = open();
  auto other = open();
  // Nothing changes: watch waits out its timeout and returns the same counter.
  uint64_t v = q->version();
  auto t0 = steady_clock::now();
  EXPECT_EQ(q->watch(v, milliseconds(200)), v);
  EXPECT_GE(steady_clock::now() - t0, milliseconds(200));

  // Another client's change wakes it long before the timeout.
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    other->submit(item("a"));
  });
  t0 = steady_clock::now();
  uint64_t v2 = q->watch(v, milliseconds(20000));
  auto waited = steady_clock::now() - t0;
  writer.join();
  EXPECT_NE(v2, v);
  EXPECT_LT(waited, milliseconds(10000));
  ASSERT_NE(find(*q, "a"), nullptr) << "what woke the watcher is in the queue";

  // So does a change through the same client, from another thread.
  std::thread self([&] {
    std::this_thread::sleep_for(milliseconds(100));
    q->cancel("a", "", "no");
  });
  t0 = steady_clock::now();
  uint64_t v3 = q->watch(v2, milliseconds(20000));
  waited = steady_clock::now() - t0;
  self.join();
  EXPECT_NE(v3, v2);
  EXPECT_LT(waited, milliseconds(10000));
  EXPECT_EQ(find(*q, "a")->state, ItemState::cancelled);
  // A counter that is already behind returns at once.
  t0 = steady_clock::now();
  EXPECT_EQ(q->watch(v, milliseconds(20000)), q->version());
  EXPECT_LT(steady_clock::now() - t0, milliseconds(10000));
}

TEST_P(QueueBackendContract, ClaimersInThreadsNeverClaimTheSameItem) {
  constexpr int kItems = 60, kThreads = 4;
  {
    auto q = open();
    for (int i = 0; i < kItems; ++i)
      ASSERT_EQ(q->submit(item("i" + std::to_string(i))).kind, SubmitOutcome::Kind::queued);
  }
  std::vector<std::unique_ptr<QueueBackend>> clients;
  for (int t = 0; t < kThreads; ++t) clients.push_back(open());
  std::vector<std::vector<std::string>> got(kThreads);
  std::latch go(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      try {
        ClaimRequest r = any_slot();
        r.name_run = [t](const QueueItem& it) { return "t" + std::to_string(t) + "-" + it.item_id; };
        while (auto c = clients[t]->claim(r)) got[t].push_back(c->item_id);
      } catch (const std::exception&) {
        ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::map<std::string, int> times;
  size_t total = 0;
  for (const auto& v : got) {
    total += v.size();
    for (const auto& id : v) ++times[id];
  }
  EXPECT_EQ(total, static_cast<size_t>(kItems));
  EXPECT_EQ(times.size(), static_cast<size_t>(kItems));
  for (const auto& [id, n] : times) EXPECT_EQ(n, 1) << id << " claimed " << n << " times";
  // The queue agrees: every item runs its first attempt, under the name its claimer gave it.
  auto s = open()->list();
  for (int t = 0; t < kThreads; ++t)
    for (const auto& id : got[t]) {
      const QueueItem* it = s->state.find(id);
      ASSERT_NE(it, nullptr);
      EXPECT_EQ(it->state, ItemState::running);
      EXPECT_EQ(it->attempts.size(), 1u);
      EXPECT_EQ(it->current()->run_id, "t" + std::to_string(t) + "-" + id);
    }
}

TEST_P(QueueBackendContract, ClaimersInProcessesNeverClaimTheSameItem) {
  constexpr int kItems = 40, kProcs = 3;
  {
    auto q = open();
    for (int i = 0; i < kItems; ++i)
      ASSERT_EQ(q->submit(item("p" + std::to_string(i))).kind, SubmitOutcome::Kind::queued);
  }
  int go[2], out[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(out), 0);
  std::vector<pid_t> kids;
  for (int k = 0; k < kProcs; ++k) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      ::close(out[0]);
      char b;
      if (::read(go[0], &b, 1) != 1) ::_exit(3);
      try {
        auto q = open();
        std::string lines;
        while (auto c = q->claim(any_slot())) lines += c->item_id + "\n";
        // One write per claimer, under PIPE_BUF: the lines of two claimers never interleave.
        if (::write(out[1], lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) ::_exit(4);
      } catch (...) {
        ::_exit(2);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(out[1]);
  std::string start(kProcs, 'g');
  ASSERT_EQ(::write(go[1], start.data(), start.size()), static_cast<ssize_t>(start.size()));
  ::close(go[1]);
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  for (pid_t pid : kids) {
    int ws = 0;
    ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
    EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << "claimer " << pid << " status " << ws;
  }
  std::multiset<std::string> ids;
  for (size_t pos = 0, nl; (nl = all.find('\n', pos)) != std::string::npos; pos = nl + 1)
    ids.insert(all.substr(pos, nl - pos));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kItems));
  for (const auto& id : std::set<std::string>(ids.begin(), ids.end()))
    EXPECT_EQ(ids.count(id), 1u) << id << " claimed more than once";
  auto s = open()->list();
  for (int i = 0; i < kItems; ++i) {
    const QueueItem* it = s->state.find("p" + std::to_string(i));
    ASSERT_NE(it, nullptr);
    EXPECT_EQ(it->state, ItemState::claimed);
    EXPECT_EQ(it->attempts.size(), 1u);
  }
}

TEST_P(QueueBackendContract, AClaimTakesItsPathLocksAndOverlappingItemsWait) {
  auto q = open();
  auto other = open();
  ASSERT_EQ(q->submit(locking("a", {"src/"})).kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(q->submit(locking("b", {"src/a.c"})).kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(q->submit(locking("c", {"docs/"})).kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(q->submit(locking("d", {"src/"}, "/other-repo")).kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(q->submit(item("e")).kind, SubmitOutcome::Kind::queued) << "an item without lock paths";
  ClaimRequest r = any_slot();
  r.name_run = [](const QueueItem& it) { return "run-" + it.item_id; };
  std::set<std::string> claimed;
  while (auto c = other->claim(r)) claimed.insert(c->item_id);
  EXPECT_EQ(claimed, (std::set<std::string>{"a", "c", "d", "e"})) << "b overlaps a: it waits, the rest go";
  const QueueItem* a = find(*q, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->current()->locks, (std::vector<std::string>{"src/"}));
  EXPECT_FALSE(a->current()->lock_expires_at.empty());
  // The lock table, as every client reads it.
  auto locks = list_locks(*q);
  ASSERT_EQ(locks.size(), 3u);
  std::set<std::string> held;
  for (const auto& l : locks) held.insert(l.repo + ":" + l.path + ":" + l.run_id);
  EXPECT_EQ(held, (std::set<std::string>{"/repo:src/:run-a", "/repo:docs/:run-c", "/other-repo:src/:run-d"}));
  // The waiting item says why.
  auto snap = q->list();
  const QueueItem* b = snap->state.find("b");
  ASSERT_NE(b, nullptr);
  Derived d = derive(*b, snap->state, r.limits, occupancy(snap->state), now_ms());
  EXPECT_EQ(d.why_not, "lock src/ held by run-a");
  // The holder's attempt ends: its locks go with it, and b is claimed.
  ASSERT_EQ(q->finish("a", 1, {"success", "", ""}).change, Change::applied);
  auto next = other->claim(r);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->item_id, "b");
}

TEST_P(QueueBackendContract, ReleaseLocksByIdByRunAndPathAndByAttempt) {
  auto q = open();
  ASSERT_EQ(q->submit(locking("a", {"src/", "docs/"})).kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(q->submit(locking("b", {"docs/x.md"})).kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(q->submit(locking("c", {"src"})).kind, SubmitOutcome::Kind::queued);
  ClaimRequest r = any_slot();
  r.name_run = [](const QueueItem& it) { return "run-" + it.item_id; };
  ASSERT_EQ(q->claim(r)->item_id, "a");
  ASSERT_FALSE(q->claim(r).has_value());

  LockRelease none;
  none.run_id = "run-nobody";
  EXPECT_EQ(q->release_locks(none).change, Change::not_found);
  LockRelease wrong_path;
  wrong_path.run_id = "run-a";
  wrong_path.path = "tests/";
  EXPECT_EQ(q->release_locks(wrong_path).change, Change::not_found);

  // One path of a run's locks, named as the contract might spell it.
  LockRelease docs;
  docs.run_id = "run-a";
  docs.path = "./docs";
  docs.by = "admin";
  docs.reason = "stuck";
  LockReleaseOutcome out = q->release_locks(docs);
  EXPECT_EQ(out.change, Change::applied);
  ASSERT_EQ(out.released.size(), 1u);
  EXPECT_EQ(out.released[0].path, "docs/");
  auto b = q->claim(r);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->item_id, "b") << "docs/ is free, src/ is still held";
  EXPECT_EQ(find(*q, "a")->state, ItemState::running) << "the holder goes on";

  // By id.
  std::string src_id;
  for (const auto& l : list_locks(*q))
    if (l.item_id == "a") src_id = l.lock_id;
  ASSERT_FALSE(src_id.empty());
  LockRelease by_id;
  by_id.lock_id = src_id;
  EXPECT_EQ(q->release_locks(by_id).change, Change::applied);
  EXPECT_EQ(q->release_locks(by_id).change, Change::not_found) << "released once";
  EXPECT_EQ(q->claim(r)->item_id, "c");

  // Every lock of one attempt (its run was sealed).
  LockRelease attempt;
  attempt.item_id = "c";
  attempt.attempt = 1;
  out = q->release_locks(attempt);
  EXPECT_EQ(out.change, Change::applied);
  ASSERT_EQ(out.released.size(), 1u);
  EXPECT_EQ(out.released[0].path, "src");
  EXPECT_EQ(list_locks(*q).size(), 1u) << "b's docs/x.md is left";
}

TEST_P(QueueBackendContract, ExpiredLocksAreIgnoredThenReapedAndRenewalsKeepThem) {
  auto q = open();
  auto other = open();
  ASSERT_EQ(q->submit(locking("a", {"src/"})).kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(q->submit(locking("b", {"src/"})).kind, SubmitOutcome::Kind::queued);
  const int64_t t0 = now_ms();
  ClaimRequest r = any_slot(t0);
  r.lock_ttl_ms = 10'000;
  r.name_run = [](const QueueItem& it) { return "run-" + it.item_id; };
  ASSERT_EQ(q->claim(r)->item_id, "a");
  EXPECT_EQ(parse_iso_ms(find(*q, "a")->current()->lock_expires_at), t0 + 10'000);
  r.now = t0 + 9'999;
  EXPECT_FALSE(other->claim(r).has_value()) << "not yet expired";
  // Renewed by its claimer: it lasts longer.
  EXPECT_EQ(q->renew_locks("a", 1, t0 + 20'000, t0 + 6'000), Change::applied);
  EXPECT_EQ(q->renew_locks("a", 1, t0 + 15'000, t0 + 6'000), Change::unchanged);
  EXPECT_EQ(q->renew_locks("a", 2, t0 + 30'000, t0 + 6'000), Change::refused);
  r.now = t0 + 19'999;
  EXPECT_FALSE(other->claim(r).has_value());
  EXPECT_TRUE(other->reap_expired_locks(t0 + 19'999, "test").empty());
  // Not renewed again (a leaked lock): ignored once its time has passed, then reaped.
  EXPECT_EQ(list_locks(*q, t0 + 20'001).size(), 0u);
  EXPECT_EQ(q->renew_locks("a", 1, t0 + 40'000, t0 + 20'001), Change::refused)
      << "an expired lock is not brought back: another claim may hold the path";
  auto reaped = other->reap_expired_locks(t0 + 20'001, "test");
  ASSERT_EQ(reaped.size(), 1u);
  EXPECT_EQ(reaped[0].item_id, "a");
  EXPECT_TRUE(other->reap_expired_locks(t0 + 20'001, "test").empty()) << "reaped once";
  EXPECT_EQ(find(*q, "a")->state, ItemState::running) << "the attempt itself is not ended";
  r.now = t0 + 20'001;
  auto b = other->claim(r);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->item_id, "b");
}

// Claimers in threads, each its own client, over items most of whose paths overlap: no two claims ever
// hold overlapping locks at once. Each claimer keeps up to two claims before it finishes the older, and
// notes every claim in a shared table from before it is checked until before its finish, so an overlap
// the backend let through is seen in the table, whatever the timing.
TEST_P(QueueBackendContract, ClaimersInThreadsNeverHoldOverlappingLocks) {
  constexpr int kThreads = 4;
  const std::vector<std::vector<std::string>> shapes{
      {"src/"}, {"src/a.c"}, {"src"}, {"."}, {"src/b/", "docs/"}, {"docs/x"}, {"tests/"}, {"tests/t.sh"}};
  int n = 0;
  {
    auto q = open();
    for (int round = 0; round < 5; ++round)
      for (const auto& paths : shapes)
        ASSERT_EQ(q->submit(locking("i" + std::to_string(n++), paths)).kind, SubmitOutcome::Kind::queued);
  }
  std::vector<std::unique_ptr<QueueBackend>> clients;
  for (int t = 0; t < kThreads; ++t) clients.push_back(open());
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> holding;  // item -> its lock paths
  std::atomic<int> overlaps{0}, failures{0}, done{0};
  std::latch go(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      try {
        ClaimRequest r = any_slot();
        std::vector<std::string> mine;
        auto finish_oldest = [&] {
          {
            std::lock_guard<std::mutex> l(mu);
            holding.erase(mine.front());
          }
          if (clients[t]->finish(mine.front(), 1, {"success", "", ""}).change != Change::applied) ++failures;
          mine.erase(mine.begin());
          ++done;
        };
        while (done.load() < n) {
          auto c = clients[t]->claim(r);
          if (c) {
            std::lock_guard<std::mutex> l(mu);
            for (const auto& [other, paths] : holding)
              for (const auto& p : paths)
                for (const auto& m : c->lock_paths)
                  if (paths_overlap(p, m)) ++overlaps;
            holding[c->item_id] = c->lock_paths;
            mine.push_back(c->item_id);
          }
          if (!mine.empty() && (!c || mine.size() == 2)) finish_oldest();
          if (!c) std::this_thread::yield();
        }
        while (!mine.empty()) finish_oldest();
      } catch (const std::exception&) {
        ++failures;
        done = n;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(overlaps.load(), 0) << "two claims held overlapping locks at once";
  EXPECT_EQ(done.load(), n);
  auto end = open()->list();
  for (const auto& [id, it] : end->state.items()) EXPECT_EQ(it.state, ItemState::done) << id;
}

// A claim that runs an item to its end with `status` (what the scheduler does with a run).
void run_to_end(QueueBackend& q, const std::string& id, const std::string& status) {
  ClaimRequest r = any_slot();
  r.name_run = [](const QueueItem& it) { return "run-" + it.item_id; };
  auto c = q.claim(r);
  ASSERT_TRUE(c.has_value()) << "nothing to claim for " << id;
  ASSERT_EQ(c->item_id, id);
  ASSERT_EQ(q.finish(id, c->current()->attempt, {status, status + " reason", ""}).change, Change::applied);
}

TEST_P(QueueBackendContract, SubmitAllRecordsEveryItemOrNone) {
  auto q = open();
  auto other = open();
  ASSERT_EQ(q->submit(item("before")).kind, SubmitOutcome::Kind::queued);
  NewItem a = item("a"), b = item("b"), end = item("end");
  b.depends_on = {"a", "before"};  // one in the batch, one in the queue
  end.depends_on = {"a", "b"};
  end.kind = "chain";
  end.when = "always";
  a.parent = b.parent = "end";
  a.allow_failure = true;
  BatchOutcome ok = q->submit_all({a, b, end});
  ASSERT_EQ(ok.kind, SubmitOutcome::Kind::queued);
  ASSERT_EQ(ok.items.size(), 3u);
  EXPECT_EQ(ok.items[1].depends_on, (std::vector<std::string>{"a", "before"}));
  const QueueItem* seen = find(*other, "end");
  ASSERT_NE(seen, nullptr) << "another client sees the batch";
  EXPECT_EQ(seen->kind, "chain");
  EXPECT_EQ(seen->when, "always");
  EXPECT_EQ(find(*other, "a")->parent, "end");
  EXPECT_TRUE(find(*other, "a")->allow_failure);
  EXPECT_FALSE(find(*other, "b")->allow_failure);

  // A duplicate anywhere, or a dependency found nowhere: nothing of the batch is recorded.
  NewItem c = item("c"), d = item("d");
  d.depends_on = {"c"};
  BatchOutcome dup = other->submit_all({c, d, item("a")});
  EXPECT_EQ(dup.kind, SubmitOutcome::Kind::duplicate);
  EXPECT_EQ(dup.item_id, "a");
  EXPECT_EQ(find(*q, "c"), nullptr);
  EXPECT_EQ(find(*q, "d"), nullptr);
  EXPECT_EQ(q->submit_all({c, item("c")}).kind, SubmitOutcome::Kind::duplicate) << "twice in one batch";
  NewItem late = item("late");
  late.depends_on = {"later"};  // later in the batch is not earlier
  BatchOutcome missing = q->submit_all({c, late, item("later")});
  EXPECT_EQ(missing.kind, SubmitOutcome::Kind::missing_dependency);
  EXPECT_EQ(missing.item_id, "late");
  EXPECT_EQ(missing.missing, "later");
  EXPECT_EQ(find(*q, "c"), nullptr);
  EXPECT_EQ(find(*q, "later"), nullptr);
  EXPECT_EQ(q->list()->state.items().size(), 4u);
}

TEST_P(QueueBackendContract, AllowedFailuresAndAlwaysItemsRunAfterFailedDependencies) {
  auto q = open();
  NewItem may = item("may", 9), must = item("must", 8), after_may = item("after-may", 7),
          after_must = item("after-must", 6), always = item("always", 5);
  may.allow_failure = true;
  after_may.depends_on = {"may"};
  after_must.depends_on = {"must"};
  always.depends_on = {"may", "must", "after-must"};
  always.when = "always";
  ASSERT_EQ(q->submit_all({may, must, after_may, after_must, always}).kind, SubmitOutcome::Kind::queued);
  run_to_end(*q, "may", "failure");
  run_to_end(*q, "must", "failure");
  auto snap = q->list();
  const QueueState& st = snap->state;
  Limits lim;
  lim.global = 10;
  Occupancy occ = occupancy(st);
  Derived dm = derive(*st.find("after-may"), st, lim, occ, now_ms());
  EXPECT_TRUE(dm.eligible) << "an allowed failure does not block: " << dm.why_not;
  Derived dn = derive(*st.find("after-must"), st, lim, occ, now_ms());
  EXPECT_FALSE(dn.eligible);
  EXPECT_EQ(dn.blocked_by, "must");
  Derived da = derive(*st.find("always"), st, lim, occ, now_ms());
  EXPECT_FALSE(da.eligible) << "after-must has not ended yet";
  EXPECT_TRUE(da.blocked_by.empty()) << "an always item is never blocked";
  EXPECT_EQ(q->cancel("after-must", "t", "blocked"), CancelOutcome::cancelled);
  run_to_end(*q, "after-may", "success");
  run_to_end(*q, "always", "success");
  EXPECT_EQ(find(*q, "always")->status, "success");
}

TEST_P(QueueBackendContract, DependentsWaitForADecisionAndSettleRecordsIt) {
  auto q = open();
  auto other = open();
  NewItem gated = item("gated", 9), next = item("next"), rejected = item("rejected", 8),
          after_rejected = item("after-rejected");
  next.depends_on = {"gated"};
  after_rejected.depends_on = {"rejected"};
  ASSERT_EQ(q->submit_all({gated, next, rejected, after_rejected}).kind, SubmitOutcome::Kind::queued);
  EXPECT_EQ(q->settle("gated", "success", "", ""), Change::refused) << "not waiting for a decision yet";
  run_to_end(*q, "gated", "awaiting_approval");
  run_to_end(*q, "rejected", "awaiting_approval");
  const QueueItem* g = find(*other, "gated");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->awaiting_decision());
  EXPECT_FALSE(q->claim(any_slot()).has_value()) << "a dependent waits for the decision, it is not blocked";
  {
    auto snap = q->list();
    Limits lim;
    Derived d = derive(*snap->state.find("next"), snap->state, lim, occupancy(snap->state), now_ms());
    EXPECT_TRUE(d.blocked_by.empty());
    EXPECT_NE(d.why_not.find("approval"), std::string::npos) << d.why_not;
  }
  EXPECT_EQ(other->settle("gated", "success", "approved by ann", "ann"), Change::applied);
  EXPECT_EQ(q->settle("gated", "success", "approved by ann", "ann"), Change::unchanged);
  EXPECT_EQ(q->settle("gated", "denied", "too late", ""), Change::refused) << "decided once";
  EXPECT_EQ(q->settle("nobody", "success", "", ""), Change::not_found);
  g = find(*q, "gated");
  EXPECT_EQ(g->status, "success");
  EXPECT_EQ(g->reason, "approved by ann");
  EXPECT_EQ(g->current()->status, "awaiting_approval") << "the attempt keeps how it ended";
  run_to_end(*q, "next", "success");

  EXPECT_EQ(q->settle("rejected", "denied", "rejected by bob", "bob"), Change::applied);
  auto snap = q->list();
  Limits lim;
  Derived d = derive(*snap->state.find("after-rejected"), snap->state, lim, occupancy(snap->state), now_ms());
  EXPECT_EQ(d.blocked_by, "rejected");
  EXPECT_FALSE(q->claim(any_slot()).has_value());
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueBackendContract, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<BackendCase>& info) { return info.param.name; });

// ---- What is particular to queue.jsonl ----------------------------------------------------------------

TEST(JsonlQueueBackend, OpensNothingWhenAskedNotToCreate) {
  cp::test::TempDir d;
  BackendOptions o;
  o.root = d.path();
  o.create = false;
  EXPECT_EQ(open_queue_backend(o), nullptr);
  EXPECT_TRUE(fs::is_empty(d.path())) << "no folder, no file";
  o.create = true;
  open_queue_backend(o)->submit(item("a"));
  o.create = false;
  auto q = open_queue_backend(o);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->kind(), "jsonl");
  EXPECT_NE(q->list()->state.find("a"), nullptr);
  o.kind = "nosuch";
  EXPECT_THROW(open_queue_backend(o), std::invalid_argument);
}

TEST(JsonlQueueBackend, CompactionArchivesTheFullLogInQueueHistory) {
  cp::test::TempDir d;
  LogQueueBackend q(std::make_unique<QueueStore>(d.path()));
  q.submit(item("old"));
  q.cancel("old", "", "no");
  q.submit(item("live"));
  EXPECT_EQ(q.compact({0, 0}), 2u) << "old's two operations";
  std::string log = cp::test::read_file(d / "queue.jsonl");
  EXPECT_EQ(log.find("\"old\""), std::string::npos);
  EXPECT_NE(log.find("\"live\""), std::string::npos);
  size_t archived = 0;
  for (const auto& e : fs::directory_iterator(d / "queue-history")) {
    ++archived;
    EXPECT_NE(cp::test::read_file(e.path()).find("\"old\""), std::string::npos);
  }
  EXPECT_EQ(archived, 1u);
}

TEST(JsonlQueueBackend, ListReportsBadLinesAndWritersCutATornTail) {
  cp::test::TempDir d;
  LogQueueBackend q(std::make_unique<QueueStore>(d.path()));
  q.submit(item("a"));
  {
    std::ofstream out(d / "queue.jsonl", std::ios::app);
    out << "not json\n"
        << R"({"op":"cancelled","item_id":"a","ts":"2026)";
  }
  LogQueueBackend other(std::make_unique<QueueStore>(d.path()));
  auto s = other.list();
  ASSERT_EQ(s->problems.size(), 1u);
  EXPECT_EQ(s->problems[0].line, 2u);
  EXPECT_EQ(s->problems[0].message, "not JSON");
  EXPECT_EQ(s->state.find("a")->state, ItemState::queued) << "a torn line is not an operation";
  EXPECT_EQ(other.hold("a", ""), Change::applied);
  std::string log = cp::test::read_file(d / "queue.jsonl");
  EXPECT_EQ(log.find("\"ts\":\"2026{"), std::string::npos) << "the torn tail was cut before the append";
  EXPECT_EQ(log.back(), '\n');
  EXPECT_TRUE(q.list()->state.find("a")->held);
}

}  // namespace
}  // namespace cp::queue
