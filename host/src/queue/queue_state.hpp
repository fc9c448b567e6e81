// The queue's current state, derived by replaying queue.jsonl (schemas/queue_item.schema.json). Nothing
// here is stored: the log is the truth, and eligibility and SLA are computed from it and the clock.
//
// An item's life: enqueued -> (claimed -> started -> finished [-> retried -> claimed ...]) -> terminal.
// Terminal means: finished with no retry left, or cancelled while queued. A cancel of a claimed or
// running item only records the request; the item ends when its run's `finished` arrives.
#pragma once

#include "core/clock.hpp"
#include "queue/path_locks.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cp::queue {

enum class ItemState { queued, claimed, running, done, cancelled };
const char* to_string(ItemState s);

struct Attempt {
  int attempt = 0;
  std::string run_id, status, reason, claimed_at, started_at, finished_at;
  std::string error;  // what cp-host run said when it ended without a sealed bundle (its log's last lines)
  // The path locks the claim took (normalised), those released since, and when the rest expire. The locks
  // are held while the attempt is claimed or running, until released or expired (held_locks()).
  std::vector<std::string> locks, released_locks;
  std::string lock_expires_at;  // ISO-8601 UTC
  // The node that claimed it (serve's --worker-id; empty in a queue written before nodes were named).
  std::string worker;
};

// The prefix of the host's own actors in a queue's log ("cp-host:scheduler", "cp-host:chain"). A token id
// cannot hold ':' and a person's is "os:<user>", so nobody else writes a name with it: what the host itself
// cancelled is told apart from a person's cancel by who, never by the words of the reason.
inline constexpr const char* kHostActor = "cp-host:";

struct QueueItem {
  std::string item_id, task_id, pack, contract_path, repo, workflow_id;
  std::string enqueued_at, run_after, deadline, start_by;  // ISO-8601 UTC; empty when not set
  int priority = 5;                                        // 0..9, higher runs first
  std::vector<std::string> depends_on;
  int max_retries = 0;
  double backoff_sec = 0;
  int timeout_sec = 0;  // the contract's expected bound, for SLA risk
  std::string submitted_by;
  std::string replay_of, from_run;  // an earlier run's contract run again (queue_backend.hpp: NewItem)
  // What a claim locks in `repo` (path_locks.hpp): the contract's allowed_paths, normalised. Empty: nothing
  // (an item queued before path locks existed, or one submitted straight to a backend without any).
  std::vector<std::string> lock_paths;
  int lock_ttl_sec = 0;  // how long a claim's locks last unless renewed; 0: the claimer's default
  // What the item is: a run ("", the default), or "chain": the item that ends a chain of items (its steps,
  // which name it as their parent); the scheduler seals the chain when it takes the item, no run starts.
  std::string kind;
  std::string parent;  // the item this one belongs to (a chain step names its chain's item), or empty
  // When the item ends without success (not cancelled), the items that depend on it still run: its
  // failure is allowed (a chain step with continue_on_fail, a reviewer's vote against) — not a refusal of a
  // run that waited for approval (decided).
  bool allow_failure = false;
  // When the item runs: "" once every dependency succeeded (or ended as allowed), "always" once every
  // dependency ended, whatever the outcome (what ends a chain runs after a failed step too).
  std::string when;

  ItemState state = ItemState::queued;
  bool held = false;
  bool cancel_requested = false;
  std::string cancel_reason;
  bool decided = false;  // its run waited for a person's decision, and the decision is recorded (settled)
  std::string
      cancel_by;  // who asked for the cancel: a token id, "os:<user>", or the host itself (kHostActor...)
  std::vector<Attempt> attempts;  // one per claim, in order
  std::string status, reason;     // of the terminal outcome (done/cancelled)
  std::string error;              // the last attempt's error, while the item is done
  uint64_t order = 0;             // position of the enqueue in the log: the FIFO tiebreak
  // When each retry queued the item again (the command tower sees a retry storm here).
  std::vector<std::string> retried_at;

  bool terminal() const { return state == ItemState::done || state == ItemState::cancelled; }
  // Done, but its run waits for a person's decision (its pack requires approval): its dependents wait for
  // the decision (QueueBackend::settle), they do not fail.
  bool awaiting_decision() const { return state == ItemState::done && status == "awaiting_approval"; }
  bool active() const { return state == ItemState::claimed || state == ItemState::running; }
  const Attempt* current() const { return attempts.empty() ? nullptr : &attempts.back(); }
  // The retry policy, for an attempt that ended with `status`: retry timeouts and errors while attempts
  // remain, never after a cancel request.
  bool should_retry(const std::string& status) const;
  // Seconds to wait before the next attempt: backoff_sec * 2^(attempts-1).
  double next_backoff_sec() const;
};

struct Problem {
  uint64_t line = 0;
  std::string message;
};

class QueueState {
 public:
  // Applies one operation. Returns false (and records a problem) for an operation that does not fit the
  // item's state: unknown item, attempt mismatch, duplicate enqueue.
  bool apply(const nlohmann::json& op, uint64_t line = 0);
  void clear();

  const std::map<std::string, QueueItem>& items() const { return items_; }
  const QueueItem* find(const std::string& id) const;
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::map<std::string, QueueItem> items_;
  std::vector<Problem> problems_;
  uint64_t next_order_ = 0;
};

// Time helpers on ISO-8601 UTC ("2026-11-25T10:00:00Z", optional fraction): milliseconds since the epoch,
// or -1 when the text is not such a time.
using core::iso_from_ms;  // the one clock: core/clock.hpp
using core::now_ms;
using core::parse_iso_ms;

// Derived fields, given the whole state and the clock.
struct Limits {
  int global = 2;                       // runs at once
  std::map<std::string, int> per_pack;  // pack id -> runs at once (packs/<id>.json concurrency_limit)
};

struct Derived {
  bool eligible = false;
  std::string why_not;     // when not eligible: the first reason ("held", "lock src/ held by RUN", ...)
  std::string sla_state;   // on_track | at_risk | breached
  std::string blocked_by;  // a dependency that ended without success: the item can never run
  // at_risk/breached: when the item became so (ms since the epoch), and the bound it is about ("deadline"
  // or "start_by").
  int64_t sla_since_ms = -1;
  std::string sla_bound;
};
// Runs holding a slot (claimed or running), overall and per pack, and the path locks held at `now`.
struct Occupancy {
  int total = 0;
  std::map<std::string, int> per_pack;
  std::vector<PathLock> locks;
};
Occupancy occupancy(const QueueState& state, int64_t now = 0);  // now 0: the clock

// The path locks held at `now`: every claimed or running attempt's locks that were not released and have
// not expired, oldest claim first. Expired locks are ignored here, whether or not anyone reaped them yet.
std::vector<PathLock> held_locks(const QueueState& state, int64_t now);
// The attempt's locks that expired by `now` and were not released: what a reaper releases.
std::vector<PathLock> expired_locks(const QueueState& state, int64_t now);
Derived derive(const QueueItem& item, const QueueState& state, const Limits& limits, const Occupancy& occ,
               int64_t now);

// The order the scheduler takes eligible items in: priority (high first), then enqueue order.
std::vector<const QueueItem*> in_run_order(const QueueState& state);

nlohmann::json to_json(const QueueItem& item, const Derived& d);

}  // namespace cp::queue
