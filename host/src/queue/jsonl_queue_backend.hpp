// The queue in one file: QueueBackend over queue.jsonl (QueueStore: an append-only log of operations under
// the flock of queue.lock, torn-tail repair, compaction into queue-history/). Each operation decides under
// the file lock on the state caught up with every process's appends, so two claimers never claim the same
// item. Several objects, in one process or many, may share one queue; one object is thread-safe (a mutex
// around its store). watch() wakes at once on this object's own changes and polls the file for others'.
#pragma once

#include "queue/queue_backend.hpp"
#include "queue/queue_store.hpp"

#include <condition_variable>
#include <mutex>

namespace cp::queue {

class JsonlQueueBackend final : public QueueBackend {
 public:
  // `runtime_dir` is <root>/.runtime-cache/cortexpilot; it is created when missing.
  explicit JsonlQueueBackend(std::filesystem::path runtime_dir);

  std::string kind() const override { return "jsonl"; }
  SubmitOutcome submit(const NewItem& item) override;
  BatchOutcome submit_all(const std::vector<NewItem>& items) override;
  Change settle(const std::string& item_id, const std::string& status, const std::string& reason,
                const std::string& by) override;
  std::optional<QueueItem> claim(const ClaimRequest& req) override;
  Change start(const std::string& item_id, int attempt, const std::string& run_id) override;
  FinishOutcome finish(const std::string& item_id, int attempt, const AttemptEnd& end) override;
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

  // How often watch() looks at the file for other processes' appends.
  static constexpr std::chrono::milliseconds kWatchPoll{20};

 private:
  // Under mu_: catches up with the file, or decides and appends under the file lock; either way the
  // change counter moves when what the store holds changed.
  void refresh_locked();
  void transact_locked(const QueueStore::Decide& decide);
  void note_change_locked();
  Change set_held(const std::string& item_id, const std::string& by, bool held);

  std::mutex mu_;
  std::condition_variable changed_;
  QueueStore store_;
  uint64_t seen_generation_ = 0;
  uint64_t version_ = 0;
  std::shared_ptr<const Snapshot> snapshot_;  // of version_; built on demand
};

}  // namespace cp::queue
