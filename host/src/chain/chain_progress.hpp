// Where a queued chain stands, read from its record (chain_record.hpp) and the queue: each step's items and
// their runs, the step's state and verdict, a review's votes, and whether the chain has ended — a step that
// failed without continue_on_fail, a missed quorum, a cancel. What the views, the scheduler's driver and the
// seal all judge the same way.
#pragma once

#include "queue/queue_state.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cp::chain {

// How the chain's own cancels are told apart in a step item's cancel_reason: a person's cancel of the chain,
// and the chain ending after a failure (the steps that had not started).
inline constexpr const char* kChainCancelledReason = "chain cancelled";
inline constexpr const char* kChainEndedReason = "chain ended";
// Who the chain's own cancels are by, in the queue's log (queue::kHostActor's prefix).
inline constexpr const char* kChainActor = "cp-host:chain";

struct ItemProgress {
  std::string item_id;
  const queue::QueueItem* item = nullptr;  // null when the queue no longer holds it (compacted)
  std::string run_id, state, status, reason, started_at, finished_at;
  bool settled = false;         // ended, and decided when its run waited for approval
  bool awaiting = false;        // its run waits for a person's decision
  bool started = false;         // an attempt of it was started
  bool ended_by_chain = false;  // cancelled because the chain was cancelled or ended
  bool decided = false;         // its run waited for approval and a person (or the deadline rule) decided
};

struct StepProgress {
  size_t index = 0;  // in the record's steps
  std::string step_id, kind, role;
  // pending (waiting for what it depends on), queued (may start), running, awaiting_approval, done,
  // cancelled (a person or the queue cancelled it), not_run (the chain ended before it); handoffs: pending,
  // done, not_run.
  std::string state;
  std::string verdict, reason;  // once done: task: its item's; review: the quorum's
  std::vector<ItemProgress> items;
  bool settled = false;  // every item ended and was decided
  bool passed = false;   // settled, and succeeded (a task) or met its quorum (a review)
  int approvals = 0;     // review: reviewers whose run succeeded so far
  std::string started_at, finished_at;
};

struct ChainProgress {
  std::vector<StepProgress> steps;
  bool cancel_requested = false;  // someone cancelled the chain (or its own item)
  std::string cancel_reason;
  // The failure that ends the chain, {step_id, role, run_id, verdict, reason}; null while none did.
  nlohmann::json ending;
  bool settled = false;  // every step item ended and was decided: the chain can be sealed
  bool started = false;  // some step item was started
};

// `cancel`: the chain's cancel (chain_record.hpp: read_chain_cancel), or null.
ChainProgress progress_of(const nlohmann::json& record, const nlohmann::json& cancel,
                          const queue::QueueState& state);

}  // namespace cp::chain
