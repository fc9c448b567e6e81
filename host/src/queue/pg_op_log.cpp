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
  // One statement: the epoch, and every operation after the last one read (none: one row of NULLs).
  const std::string sql =
      "SELECT m.epoch, o.seq, o.op::text FROM cp_queue_meta m "
      "LEFT JOIN cp_queue_ops o ON o.seq > $1 ORDER BY o.seq";
  db::PgRows r = conn_.exec(sql, {std::to_string(seq_)});
  if (r.size() == 0) throw db::DbError("cp_queue_meta is empty: the queue tables were damaged", false);
  bool changed = false;
  if (r.integer(0, 0) != epoch_) {
    const bool first = epoch_ == 0;
    forget();
    changed = !first;
    epoch_ = r.integer(0, 0);
    if (seq_ != 0 || !first) r = conn_.exec(sql, {std::to_string(seq_)});
  }
  for (int i = 0; i < r.size(); ++i) {
    if (r.null(i, 1)) continue;
    const int64_t seq = r.integer(i, 1);
    seq_ = std::max(seq_, seq);
    ++lines_;
    ++generation_;
    changed = true;
    const std::string text = r.text(i, 2);
    const uint64_t line = static_cast<uint64_t>(seq);
    if (text.size() > kMaxOp || !core::json_depth_ok(text)) {
      bad_records_.push_back({line, "operation too long or nested too deep"});
      continue;
    }
    json op = json::parse(text, nullptr, false);
    if (op.is_discarded()) {
      bad_records_.push_back({line, "not JSON"});
      continue;
    }
    if (std::string p = op_schema_problem(op); !p.empty()) {
      bad_records_.push_back({line, "does not fit queue_item.schema.json: " + p});
      continue;
    }
    state_.apply(op, line);
  }
  return changed;
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
  return with_retries([&]() -> std::vector<json> {
    std::vector<json> ops;
    std::vector<std::string> ids, texts;
    {
      db::Transaction t(conn_);
      conn_.exec(std::string("SELECT pg_advisory_xact_lock(") + kQueueLock + ")");
      catch_up();
      ops = decide(state_);
      if (ops.empty()) return ops;  // rolled back: nothing was written
      for (const auto& op : ops) {
        if (std::string p = op_schema_problem(op); !p.empty())
          throw std::invalid_argument("queue operation does not fit queue_item.schema.json: " + p + ": " +
                                      op.dump());
        ids.push_back(op["item_id"].get<std::string>());
        texts.push_back(op.dump());
      }
      // Applied to a copy first: an operation that does not fit is refused before anything is written.
      QueueState probe = state_;
      for (const auto& op : ops)
        if (!probe.apply(op))
          throw std::logic_error("queue operation does not fit: " + probe.problems().back().message);
      conn_.exec(
          "INSERT INTO cp_queue_ops (item_id, op) SELECT i, o::jsonb "
          "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(i, o, n) ORDER BY n",
          {db::text_array(ids), db::text_array(texts)});
      conn_.exec(std::string("SELECT pg_notify('") + kChannel + "', '')");
      try {
        t.commit();
      } catch (const db::DbError&) {
        // Whether the COMMIT took effect is unknown: read everything again before deciding anew.
        forget();
        throw;
      }
    }
    // Read back what was just recorded (and nothing else: the lock was held until the commit) so the state
    // holds the operations as the log does, with their numbers.
    catch_up();
    return ops;
  });
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
