// The queue as a service: what `cp-host queue submit|list|cancel|priority|compact` and the REST API both
// call, so the two can never disagree. It checks what is submitted and derives what is listed; the queue
// itself is a QueueBackend (open_queue_backend), which the scheduler drives directly. Thread-safe.
#pragma once

#include "contract/validation.hpp"
#include "queue/queue_backend.hpp"
#include "queue/queue_state.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::queue {

struct SubmitRequest {
  nlohmann::json contract;  // the task contract document
  std::string source;       // how diagnostics name it: a file path, or "request body"
  // The bytes of `source` when it is a file: diagnostics give that file's lines, not those of the copy
  // the queue keeps. Empty: lines are counted in the kept copy.
  std::string source_text;
  std::filesystem::path repo;
  std::optional<int> priority;  // default: the contract's runtime_options.priority, else 5
  std::vector<std::string> depends_on;
  std::string run_after, deadline, start_by;  // ISO-8601 UTC or empty
  std::string submitted_by;                   // token id or OS user
};

struct SubmitResult {
  enum class Outcome { queued, invalid, conflict } outcome = Outcome::invalid;
  std::vector<contract::Diagnostic> diagnostics;  // invalid: the same ones `cp-host validate` prints
  std::string error;
  nlohmann::json item;  // queued: the item as `queue list` shows it
};

struct ListFilter {
  std::string state;  // queued|claimed|running|done|cancelled, or empty for all
  bool include_ended = true;
};

class QueueService {
 public:
  // `root` holds packs/, policies/ and .runtime-cache; `registry` (optional, not owned, must outlive this)
  // is used to check plugin references of submitted contracts.
  QueueService(std::filesystem::path root, const plugin::Registry* registry);
  ~QueueService();

  SubmitResult submit(const SubmitRequest& req);
  // Records an item whose contract was checked elsewhere (an earlier run's compiled contract, run again:
  // control/run_requeue.hpp). Its times and priority are checked as submit() checks them; `conflict` when
  // a dependency is missing. The caller names the item (new_item_id()).
  SubmitResult submit_item(const NewItem& item);
  // The item fields a compiled contract decides (task, pack, priority unless given, retries, workflow, the
  // path locks and their TTL), shared by a submission and a re-queue of a past run. Throws on an
  // allowed_paths entry that cannot be locked.
  static NewItem item_from_compiled(const nlohmann::json& compiled, std::optional<int> priority);
  CancelOutcome cancel(const std::string& item_id, const std::string& by, const std::string& reason);
  // A waiting item's new priority (QueueBackend::set_priority). std::invalid_argument outside 0..9.
  Change set_priority(const std::string& item_id, int priority, const std::string& by);
  static constexpr int kMinPriority = 0, kMaxPriority = 9;
  nlohmann::json list(const ListFilter& f);  // {items:[...], counts:{state: n}, problems:[...]}
  nlohmann::json counts();                   // {state: n}, cheaper than list() for health and metrics
  std::optional<nlohmann::json> get(const std::string& item_id);
  // Moves ended items out of the live queue (QueueBackend::compact).
  size_t compact(const CompactRequest& req);
  // The path locks held now (list_locks), oldest first: {locks: [...], count}.
  nlohmann::json locks();

  // What a queued item's locks last beyond the run's wall-time budget: its gates, its seal.
  static constexpr int kLockTtlMarginSec = 15 * 60;

  // The limits that decide eligibility: `global` plus each pack's concurrency_limit.
  Limits limits(int global) const;

  // The queue itself: what the scheduler claims from and finishes in.
  QueueBackend& backend() { return *backend_; }
  const std::filesystem::path& root() const { return root_; }
  void set_global_limit(int n) { global_ = n; }

 private:
  SubmitResult record(const NewItem& item);  // the backend's submit, and the item as list() shows it

  std::filesystem::path root_;
  const plugin::Registry* registry_;
  std::unique_ptr<QueueBackend> backend_;
  std::atomic<int> global_{2};
  // packs/*.json concurrency limits, re-read only when the packs folder changes.
  mutable std::mutex limits_mu_;
  mutable std::map<std::string, int> per_pack_;
  mutable std::filesystem::file_time_type packs_mtime_{};
  mutable bool limits_read_ = false;
  // counts() of the last snapshot it counted.
  std::mutex counts_mu_;
  std::shared_ptr<const Snapshot> counts_of_;
  nlohmann::json counts_;
};

}  // namespace cp::queue
