#include "queue/pg_op_log.hpp"

#include "core/json_depth.hpp"
#include "db/migrations.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace cp::queue {

using nlohmann::json;

namespace {

// The writers' lock (pg_advisory_xact_lock): an arbitrary constant naming "the queue".
constexpr const char* kQueueLock = "72401134011";
constexpr const char* kChannel = "cp_queue";
constexpr size_t kMaxOp = 1 << 20;  // as queue.jsonl: an operation is small, a longer one is damage
constexpr int kPage = 1000;         // operations read per statement: bounded memory however long the log

}  // namespace

PgOpLog::PgOpLog(const std::string& conninfo, std::chrono::milliseconds retry_for)
    : retry_for_(retry_for), conn_(conninfo) {
  db::require_current_schema(conn_);
  listen_ = std::make_unique<db::PgConnection>(conninfo);
  listen_->listen(kChannel);
}

template <class Work>
auto PgOpLog::with_retries(Work&& work) -> decltype(work()) {
  const auto give_up = std::chrono::steady_clock::now() + retry_for_;
  std::chrono::milliseconds pause{50};
  for (;;) {
    try {
      return work();
    } catch (const db::DbError& e) {
      if (!e.transient() || std::chrono::steady_clock::now() + pause > give_up) throw;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(2));
    if (conn_.broken()) {
      try {
        conn_.reconnect();
        // A new connection may be to another server (a fail-over, a restore): read everything again
        // rather than trust the position reached on the old one.
        forget();
      } catch (const db::DbError&) {
        // still down: the next round tries again
      }
    }
  }
}

void PgOpLog::forget() {
  state_.clear();
  bad_records_.clear();
  seq_ = 0;
  epoch_ = 0;
  lines_ = 0;
  ++generation_;
}

bool PgOpLog::catch_up() {
  bool changed = false;
  for (;;) {
    // A page of operations after the last one read, with the epoch (no operation: one row of NULLs). An
    // operation too long to be one is not even fetched: the server says only that it is.
    db::PgRows r = conn_.exec(
        "SELECT m.epoch, o.seq, CASE WHEN octet_length(o.op::text) > $2 THEN NULL ELSE o.op::text END "
        "FROM cp_queue_meta m LEFT JOIN LATERAL (SELECT seq, op FROM cp_queue_ops WHERE seq > $1 "
        "ORDER BY seq LIMIT $3) o ON true ORDER BY o.seq",
        {std::to_string(seq_), std::to_string(kMaxOp), std::to_string(kPage)});
    if (r.size() == 0) throw db::DbError("cp_queue_meta is empty: the queue tables were damaged", false);
    if (r.integer(0, 0) != epoch_) {
      // A compaction rewrote the log (or this is the first read): start over from its beginning.
      const bool first = epoch_ == 0;
      forget();
      epoch_ = r.integer(0, 0);
      changed = changed || !first;
      continue;
    }
    int rows = 0;
    for (int i = 0; i < r.size(); ++i) {
      if (r.null(i, 1)) continue;
      ++rows;
      const int64_t seq = r.integer(i, 1);
      seq_ = std::max(seq_, seq);
      ++lines_;
      ++generation_;
      changed = true;
      const uint64_t line = static_cast<uint64_t>(seq);
      if (r.null(i, 2)) {
        bad_records_.push_back({line, "operation longer than " + std::to_string(kMaxOp) + " bytes"});
        continue;
      }
      const std::string text = r.text(i, 2);
      if (!core::json_depth_ok(text)) {
        bad_records_.push_back({line, "operation nested too deep"});
        continue;
      }
      std::string problem;
      std::optional<json> op = parse_op(text, problem);
      if (!op) {
        bad_records_.push_back({line, problem});
        continue;
      }
      state_.apply(*op, line);
    }
    if (rows < kPage) return changed;
  }
}

bool PgOpLog::refresh() {
  return with_retries([&] { return catch_up(); });
}

std::vector<Problem> PgOpLog::problems() const {
  std::vector<Problem> all = bad_records_;
  all.insert(all.end(), state_.problems().begin(), state_.problems().end());
  return all;
}

std::vector<json> PgOpLog::transact(const Decide& decide) {
  // This call's mark on the rows it writes: after a COMMIT whose answer was lost, the next round finds
  // them and returns them instead of deciding again on a state that already holds them.
  const std::string token = db::random_token();
  bool sent_commit = false;
  std::vector<json> ops = with_retries([&]() -> std::vector<json> {
    if (sent_commit) {
      db::PgRows done = conn_.exec("SELECT op::text FROM cp_queue_ops WHERE txn = $1 ORDER BY seq", {token});
      if (done.size() > 0) {
        std::vector<json> recorded;
        for (int i = 0; i < done.size(); ++i)
          recorded.push_back(json::parse(done.text(i, 0), nullptr, false));
        return recorded;
      }
      sent_commit = false;  // it did not commit: decide again
    }
    std::vector<json> decided;
    std::vector<std::string> ids, texts;
    db::Transaction t(conn_);
    conn_.exec(std::string("SELECT pg_advisory_xact_lock(") + kQueueLock + ")");
    catch_up();
    decided = decide(state_);
    if (decided.empty()) return decided;  // rolled back: nothing was written
    for (auto& op : decided) {
      strip_nul(op);  // PostgreSQL's jsonb holds no U+0000
      if (std::string p = op_schema_problem(op); !p.empty())
        throw std::invalid_argument("queue operation does not fit queue_item.schema.json: " + p + ": " +
                                    op.dump());
      ids.push_back(op["item_id"].get<std::string>());
      texts.push_back(op.dump());
    }
    // Applied to a copy first: an operation that does not fit is refused before anything is written.
    QueueState probe = state_;
    for (const auto& op : decided)
      if (!probe.apply(op))
        throw std::logic_error("queue operation does not fit: " + probe.problems().back().message);
    conn_.exec(
        "INSERT INTO cp_queue_ops (item_id, op, txn) SELECT i, o::jsonb, $3 "
        "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(i, o, n) ORDER BY n",
        {db::text_array(ids), db::text_array(texts), token});
    conn_.exec(std::string("SELECT pg_notify('") + kChannel + "', '')");
    sent_commit = true;
    t.commit();
    return decided;
  });
  // Read back what was just recorded (nothing else came between: the lock was held until the commit), so
  // the state holds the operations as the log does. Should that read fail, the next one starts over.
  try {
    catch_up();
  } catch (const db::DbError&) {
    forget();
  }
  return ops;
}

size_t PgOpLog::compact(int64_t keep_terminal_ms) {
  return with_retries([&]() -> size_t {
    size_t dropped = 0;
    {
      db::Transaction t(conn_);
      conn_.exec(std::string("SELECT pg_advisory_xact_lock(") + kQueueLock + ")");
      catch_up();
      std::set<std::string> keep = kept_by_compaction(state_, keep_terminal_ms, now_ms());
      const std::string kept = db::text_array({keep.begin(), keep.end()});
      conn_.exec(
          "INSERT INTO cp_queue_history (seq, item_id, op, recorded_at) "
          "SELECT seq, item_id, op, recorded_at FROM cp_queue_ops WHERE NOT (item_id = ANY($1::text[]))",
          {kept});
      dropped = static_cast<size_t>(
          conn_
              .exec("WITH d AS (DELETE FROM cp_queue_ops WHERE NOT (item_id = ANY($1::text[])) RETURNING 1) "
                    "SELECT count(*) FROM d",
                    {kept})
              .integer(0, 0));
      if (dropped == 0) return 0;
      conn_.exec("UPDATE cp_queue_meta SET epoch = epoch + 1");
      conn_.exec(std::string("SELECT pg_notify('") + kChannel + "', '')");
      try {
        t.commit();
      } catch (const db::DbError&) {
        forget();
        throw;
      }
    }
    catch_up();
    return dropped;
  });
}

void PgOpLog::wait_for_others(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> l(listen_mu_);
  if (listen_->broken()) {
    try {
      listen_->reconnect();
    } catch (const db::DbError&) {
      std::this_thread::sleep_for(timeout);
      return;
    }
  }
  if (!listen_->wait_notification(timeout) && listen_->broken()) std::this_thread::sleep_for(timeout / 4);
}

}  // namespace cp::queue
