// The queue's operation log in PostgreSQL (table cp_queue_ops, migration 1): what lets N cp-host nodes on
// N machines share one queue. Writers serialise on a transaction-scoped advisory lock and decide on the
// state caught up under it, exactly as queue.jsonl's writers do under its flock, so both backends keep one
// semantics; every commit NOTIFYs channel cp_queue, which wakes idle watchers at once.
//
// The connection may fail at any moment (a restart, a network cut): reads and writes reconnect with
// backoff for up to `retry_for` and then throw db::DbError. A write whose COMMIT got no answer may or may
// not have been recorded; the log then re-reads everything and decides again, and since every queue
// decision is idempotent on the state it sees, nothing is done twice.
#pragma once

#include "db/pg_connection.hpp"
#include "queue/op_log.hpp"

#include <memory>
#include <mutex>

namespace cp::queue {

class PgOpLog final : public OpLog {
 public:
  // Connects (twice: one connection decides, one listens) and refuses a database whose schema is not
  // current (db::SchemaMismatch, naming `cp-host db migrate`).
  explicit PgOpLog(const std::string& conninfo,
                   std::chrono::milliseconds retry_for = std::chrono::seconds(30));

  std::string kind() const override { return "postgres"; }
  bool refresh() override;
  std::vector<nlohmann::json> transact(const Decide& decide) override;
  size_t compact(int64_t keep_terminal_ms) override;
  const QueueState& state() const override { return state_; }
  std::vector<Problem> problems() const override;
  uint64_t lines() const override { return lines_; }
  uint64_t generation() const override { return generation_; }
  bool notifies() const override { return true; }
  void wait_for_others(std::chrono::milliseconds timeout) override;

 private:
  // Runs `work` until it succeeds, reconnecting after a transient error, for up to retry_for_.
  template <class Work>
  auto with_retries(Work&& work) -> decltype(work());
  bool catch_up();  // reads what is new; false when nothing was
  void forget();    // the next catch_up() reads the whole log again

  std::chrono::milliseconds retry_for_;
  db::PgConnection conn_;
  std::mutex listen_mu_;
  std::unique_ptr<db::PgConnection> listen_;
  QueueState state_;
  std::vector<Problem> bad_records_;
  int64_t seq_ = 0;     // the last operation read
  int64_t epoch_ = 0;   // cp_queue_meta.epoch when read: a compaction moves it, and readers start over
  uint64_t lines_ = 0;  // operations read since the last start over
  uint64_t generation_ = 0;
};

}  // namespace cp::queue
