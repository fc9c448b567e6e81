// The queue's storage seam: every change to the run queue, and every read of it, goes through a
// QueueBackend. Both backends are a LogQueueBackend (log_queue_backend.hpp) over an operation log:
// queue.jsonl under queue.lock (QueueStore, "jsonl", the default), or a table in PostgreSQL (PgOpLog,
// "postgres") that nodes on several machines share.
//
// The contract every backend keeps:
//  - each operation on an item is atomic: it sees the item's current state (whatever process changed it)
//    and either records its change whole or records nothing;
//  - operations are idempotent per item: repeating one that already took effect writes nothing and says
//    `unchanged` (a cancel asked twice, a finish of an attempt that already ended);
//  - claim() hands an item to exactly one caller: two claimers, in threads or processes, never get the same
//    attempt of the same item (a SQL backend: SELECT ... FOR UPDATE SKIP LOCKED in one transaction);
//  - the path locks (path_locks.hpp) are part of what the backend stores, and a claim takes the item's locks
//    in the same atomic step as the item: it judges overlap against every lock held at that moment, by any
//    process, so two claimers never hold overlapping locks of one repository. A SQL backend keeps a lock
//    table (repo, path, item_id, attempt, run_id, since, expires_at, released_at) and, in the claim's
//    transaction, serialises claims per repository (SELECT ... FOR UPDATE on a row per repo, or an advisory
//    lock on its hash) before it reads the held rows and inserts its own. Locks end with their attempt
//    (finish), by release_locks(), or when expires_at passes (ignored at once, released by
//    reap_expired_locks());
//  - every object is safe to use from several threads; several objects (and processes) may share a queue.
#pragma once

#include "queue/queue_state.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cp::queue {

// What submit() records: an item as it enters the queue.
struct NewItem {
  std::string item_id;  // new_item_id(): named by the caller (its contract snapshot carries the name)
  std::string task_id, pack, contract_path, repo, workflow_id;
  int priority = 5;  // 0..9
  std::vector<std::string> depends_on;
  std::string run_after, deadline, start_by;  // ISO-8601 UTC or empty
  int max_retries = 0;
  double backoff_sec = 0;
  int timeout_sec = 0;
  std::string submitted_by;
  // An item that runs an earlier run's compiled contract again (contract_path is that bundle's
  // contract.json): as a replay (from the run's baseline commit, `cp-host replay`), or from its
  // rollback.baseline_ref as it resolves when the item starts (`cp-host run --from-run`). At most one is set.
  std::string replay_of, from_run;
  std::vector<std::string> lock_paths;  // normalised (lock_paths_of); empty: a claim takes no path lock
  int lock_ttl_sec = 0;                 // how long a claim's locks last; 0: the claimer's default
  // A group of items (a chain): what the item is ("" a run, "chain" the item ending its group), the item
  // it belongs to, whether its dependents run after it failed, and whether it waits for its dependencies
  // to succeed ("") or only to end ("always"). See QueueItem.
  std::string kind, parent;
  bool allow_failure = false;
  std::string when;
};

struct SubmitOutcome {
  enum class Kind {
    queued,              // recorded
    duplicate,           // an item of that id exists already: nothing written
    missing_dependency,  // depends_on names an item the queue does not hold: nothing written
  } kind = Kind::queued;
  std::string missing;  // missing_dependency: a dependency the queue does not hold
  QueueItem item;       // queued: the item as recorded
};

// What submit_all() recorded: every item, or none.
struct BatchOutcome {
  SubmitOutcome::Kind kind = SubmitOutcome::Kind::queued;
  std::string item_id;           // duplicate or missing_dependency: the item of the batch concerned
  std::string missing;           // missing_dependency: the dependency neither the queue nor the batch holds
  std::vector<QueueItem> items;  // queued: the items as recorded, in the batch's order
};

// The result of an operation on one item.
enum class Change {
  applied,    // recorded
  unchanged,  // the item is already where the operation would put it: nothing written
  not_found,  // no such item
  refused,    // the item's state does not allow it (an attempt that is not the current one, an ended item)
};
const char* to_string(Change c);

enum class CancelOutcome { cancelled, requested, not_found, already_ended };

struct ClaimRequest {
  Limits limits;    // the concurrency limits eligibility is judged by
  int64_t now = 0;  // the time eligibility is judged at (milliseconds since the epoch); 0: the clock
  // When set, the claim also records the attempt's start under the run id this returns for the item, in
  // the same atomic step: the run is named in the queue before it starts. Called once, on the item being
  // claimed, while the claim is in progress; it must not call the backend.
  std::function<std::string(const QueueItem&)> name_run;
  // How long the claimed item's path locks last from `now` (until renewed); 0: the item's lock_ttl_sec,
  // else kDefaultLockTtlSec. An item whose paths overlap a held lock of its repository is not eligible.
  int64_t lock_ttl_ms = 0;
  // The node claiming (recorded with the attempt): its lease on the attempt lasts while its heartbeat does.
  std::string worker;
};

// The TTL of a claim's locks when neither the claimer nor the item names one.
inline constexpr int kDefaultLockTtlSec = 2 * 3600;

// The TTL a claim gives `item`'s locks, in milliseconds: the claimer's `claim_ttl_ms` when it names one,
// else the item's lock_ttl_sec, else kDefaultLockTtlSec.
inline int64_t lock_ttl_ms(const QueueItem& item, int64_t claim_ttl_ms) {
  if (claim_ttl_ms > 0) return claim_ttl_ms;
  return int64_t{item.lock_ttl_sec > 0 ? item.lock_ttl_sec : kDefaultLockTtlSec} * 1000;
}

// Which locks release_locks() releases: one lock by id, the locks of a run (or one path of them), or the
// locks of one attempt. Exactly one of lock_id, run_id and item_id is set.
struct LockRelease {
  std::string lock_id;
  std::string run_id, path;  // path: normalised or not; empty: every lock of the run
  std::string item_id;
  int attempt = 0;  // with item_id
  std::string by, reason;
  int64_t now = 0;  // locks expired by then are not held (0: the clock)
};

struct LockReleaseOutcome {
  Change change = Change::not_found;  // applied, or not_found: no held lock matched
  std::vector<PathLock> released;
};

// How an attempt ended.
struct AttemptEnd {
  std::string status;  // success|failure|denied|timeout|cancelled|error|awaiting_approval
  std::string reason;
  std::string error;  // what the run printed when it ended without a sealed bundle (kept with the attempt)
};

struct FinishOutcome {
  Change change = Change::not_found;
  bool retried = false;   // applied: the retry policy queued the item again, in the same atomic step
  std::string run_after;  // retried: not before this time
};

struct RetryRequest {
  std::string run_after;  // ISO-8601 UTC; empty: now
  std::string reason;
};

struct CompactRequest {
  int64_t keep_terminal_ms =
      0;                    // items that ended within this long stay, and whatever a kept item depends on
  uint64_t only_above = 0;  // do nothing while the live queue holds at most this many records
};

// The whole queue at one moment: every item the live queue holds, and what could not be read.
struct Snapshot {
  QueueState state;
  std::vector<Problem> problems;  // records skipped or refused on reading (JSONL: by line number)
  uint64_t version = 0;           // this backend object's change counter when the snapshot was taken
};

class QueueBackend {
 public:
  virtual ~QueueBackend() = default;

  virtual std::string kind() const = 0;  // "jsonl"

  // Records a new item, unless its id exists or one of its dependencies does not.
  virtual SubmitOutcome submit(const NewItem& item) = 0;

  // Records several items in one atomic step (the steps of a chain and the item that ends it): all of
  // them, or none when one's id exists (in the queue or twice in the batch) or one of its dependencies is
  // neither in the queue nor earlier in the batch.
  virtual BatchOutcome submit_all(const std::vector<NewItem>& items) = 0;

  // Claims the first eligible item in run order (priority, then FIFO; derive() with `limits` at `now`):
  // its next attempt is recorded as claimed (and started, with name_run). Returns the item as it is after
  // the claim, or nothing when no item is eligible.
  virtual std::optional<QueueItem> claim(const ClaimRequest& req) = 0;

  // Records that attempt `attempt` of a claimed item runs as `run_id`.
  virtual Change start(const std::string& item_id, int attempt, const std::string& run_id) = 0;

  // Ends attempt `attempt` of a claimed or running item, then applies the item's retry policy
  // (QueueItem::should_retry, next_backoff_sec) in the same atomic step.
  virtual FinishOutcome finish(const std::string& item_id, int attempt, const AttemptEnd& end) = 0;

  // Ends attempt `attempt` of a claimed or running item whose node lost its lease (its heartbeat lapsed: a
  // crash, a partition, a pause): the attempt ends `error` with `reason`, and the item is queued again at
  // once whatever its retry policy, since the run did not fail (a cancel requested meanwhile ends it
  // cancelled instead). The attempt number is the fence: the lost node's later start, finish or lock
  // renewal for that attempt is refused. `refused` when the attempt is not the item's active one.
  virtual FinishOutcome requeue_lost(const std::string& item_id, int attempt, const std::string& reason) = 0;

  // Records the decision on an item whose attempt ended awaiting_approval (QueueItem::awaiting_decision):
  // its status becomes `status` (success when its run was approved; denied when it was rejected or its
  // deadline passed; cancelled when nobody will decide any more), and its dependents go on or are
  // blocked accordingly. `unchanged` when the item already ended so; `refused` when it does not wait for a
  // decision. `by` may be empty.
  virtual Change settle(const std::string& item_id, const std::string& status, const std::string& reason,
                        const std::string& by) = 0;

  // Queues an item whose last attempt ended (state done) again. `unchanged` when it is already waiting.
  virtual Change retry(const std::string& item_id, const RetryRequest& req) = 0;

  // A waiting item ends cancelled; a claimed or running one is marked cancel_requested and ends when its
  // attempt finishes. `by` may be empty.
  virtual CancelOutcome cancel(const std::string& item_id, const std::string& by,
                               const std::string& reason) = 0;

  // A held item is never eligible until released. Refused once the item has ended.
  virtual Change hold(const std::string& item_id, const std::string& by) = 0;
  virtual Change release(const std::string& item_id, const std::string& by) = 0;

  // Gives a waiting item another priority (0..9: the caller checks the range), which moves it in run
  // order. `refused` once the item is claimed, running or ended (its priority no longer decides anything);
  // `unchanged` when it has that priority already. `by` may be empty.
  virtual Change set_priority(const std::string& item_id, int priority, const std::string& by) = 0;

  // The current queue, caught up with every process's changes. Cheap while nothing changed.
  virtual std::shared_ptr<const Snapshot> list() = 0;

  // The change counter, caught up with every process's changes: it grows whenever the queue changes.
  virtual uint64_t version() = 0;
  // Waits until the change counter differs from `since` or `timeout` passes; returns the counter.
  virtual uint64_t watch(uint64_t since, std::chrono::milliseconds timeout) = 0;

  // Moves items that ended more than keep_terminal_ms ago out of the live queue (a backend may archive
  // them: JSONL keeps the full log in queue-history/). Returns how many records left the live queue.
  virtual size_t compact(const CompactRequest& req) = 0;

  // Releases the held path locks `req` names, atomically; the attempt itself goes on.
  virtual LockReleaseOutcome release_locks(const LockRelease& req) = 0;

  // Moves the expiry of an active attempt's held locks to `expires_at_ms` (the claimer renews the locks
  // of runs it still watches). `refused` when the attempt is not the active one or holds no lock any more
  // (released, or expired by `now`: another claim may have them); `unchanged` when they last that long.
  virtual Change renew_locks(const std::string& item_id, int attempt, int64_t expires_at_ms,
                             int64_t now = 0) = 0;

  // Releases every lock that expired by `now` and was not released (a leaked lock: its claimer died and
  // nobody ended the attempt), recording `by`. Returns them.
  virtual std::vector<PathLock> reap_expired_locks(int64_t now, const std::string& by) = 0;
};

// The store this process uses: CP_HOST_STORE (set by `serve --store` for its own parts, or by an operator)
// names a PostgreSQL database (postgres://..., postgresql://..., or libpq's key=value form); empty or
// "jsonl": queue.jsonl under the root. std::invalid_argument for anything else.
struct StoreChoice {
  std::string kind;   // "jsonl" or "postgres"
  std::string store;  // postgres: the connection string
};
StoreChoice configured_store();

struct BackendOptions {
  std::filesystem::path root;  // the project root: the JSONL queue lives under its runtime folder
  std::string kind = "";       // the backend: "jsonl", "postgres", or "" for configured_store()'s
  std::string store = {};      // postgres: the connection string (empty: libpq's PG* variables)
  // false: when the queue was never written, open_queue_backend() returns nullptr and creates nothing.
  bool create = true;
};

// The backend `o.kind` names, over the queue of `o.root`. std::invalid_argument for an unknown kind.
std::unique_ptr<QueueBackend> open_queue_backend(const BackendOptions& o);

// The path locks held now, oldest claim first: the read API of the lock table (GET /api/locks, `cp-host
// locks list`, and any view that shows who holds what).
std::vector<PathLock> list_locks(QueueBackend& backend, int64_t now = 0);
// The same over the queue of `root`, opened for this call; empty when the root has no queue.
std::vector<PathLock> list_locks(const std::filesystem::path& root, int64_t now = 0);

// "q-20261125T101500Z-3f9a1c": sortable by time, unique across processes.
std::string new_item_id();

}  // namespace cp::queue
