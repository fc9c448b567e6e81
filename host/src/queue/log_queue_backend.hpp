// QueueBackend over an operation log (op_log.hpp): queue.jsonl (QueueStore) or a PostgreSQL table
// (PgOpLog). Each operation decides under the log's exclusive lock on the state caught up with every
// writer's appends, so two claimers never claim the same item, whichever process or machine they run on;
// both logs share these decisions, so both backends keep exactly the same semantics. Several objects, in
// one process or many, may share one queue; one object is thread-safe (a mutex around its log). watch()
// wakes at once on this object's own changes and on the log's sign of others' (a poll of the file, a
// NOTIFY from the database).
#pragma once

#include "queue/op_log.hpp"
#include "queue/queue_backend.hpp"

#include <condition_variable>
#include <mutex>

namespace cp::queue {

class LogQueueBackend final : public QueueBackend {
 public:
  explicit LogQueueBackend(std::unique_ptr<OpLog> log);

  std::string kind() const override { return log_->kind(); }
  SubmitOutcome submit(const NewItem& item) override;
  BatchOutcome submit_all(const std::vector<NewItem>& items) override;
  Change settle(const std::string& item_id, const std::string& status, const std::string& reason,
                const std::string& by) override;
  std::optional<QueueItem> claim(const ClaimRequest& req) override;
  Change start(const std::string& item_id, int attempt, const std::string& run_id) override;
  FinishOutcome finish(const std::string& item_id, int attempt, const AttemptEnd& end) override;
  FinishOutcome requeue_lost(const std::string& item_id, int attempt, const std::string& reason) override;
  Change retry(const std::string& item_id, const RetryRequest& req) override;
  CancelOutcome cancel(const std::string& item_id, const std::string& by, const std::string& reason) override;
  Change hold(const std::string& item_id, const std::string& by) override;
  Change release(const std::string& item_id, const std::string& by) override;
  Change set_priority(const std::string& item_id, int priority, const std::string& by) override;
  std::shared_ptr<const Snapshot> list() override;
  uint64_t version() override;
  uint64_t watch(uint64_t since, std::chrono::milliseconds timeout) override;
  size_t compact(const CompactRequest& req) override;
  LockReleaseOutcome release_locks(const LockRelease& req) override;
  Change renew_locks(const std::string& item_id, int attempt, int64_t expires_at_ms,
                     int64_t now = 0) override;
  std::vector<PathLock> reap_expired_locks(int64_t now, const std::string& by) override;

  // How often watch() looks at the log for other processes' appends (a log that signals them wakes it
  // sooner).
  static constexpr std::chrono::milliseconds kWatchPoll{20};

 private:
  // Under mu_: catches up with the file, or decides and appends under the file lock; either way the
  // change counter moves when what the store holds changed.
  void refresh_locked();
  void transact_locked(const OpLog::Decide& decide);
  void note_change_locked();
  Change set_held(const std::string& item_id, const std::string& by, bool held);

  std::mutex mu_;
  std::condition_variable changed_;
  std::unique_ptr<OpLog> log_;
  uint64_t seen_generation_ = 0;
  uint64_t version_ = 0;
  std::shared_ptr<const Snapshot> snapshot_;  // of version_; built on demand
};

}  // namespace cp::queue
