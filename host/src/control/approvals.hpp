// Human decisions on runs whose pack requires approval. A run that passed its gates waits in
// `awaiting_approval` with reports/approval_pack.json; a decision then seals it for good:
//   approve  -> verdict success, proof_pack.json (with the decision); needs `approvers` distinct approvers
//   reject   -> verdict denied, incident_pack.json, the worktree discarded
//   god-mode -> an admin's approval that decides alone (a reason is required), recorded as how=god_mode
//   deadline -> past the pack's approval.deadline_sec the run is denied by rule (default-deny)
// Every decision appends APPROVAL_RECORDED / APPROVAL_DECIDED events and RUN_SEALED to the run's hash
// chain, then rewrites manifest.json; a crash between the two is finished by the next decision or listing.
// Decisions on one run are serialised on the bundle's lock; any number of processes may decide at once.
#pragma once

#include "control/actor.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace cp::control {

// runs/.awaiting/<run_id>: present while the run waits, so listings read the few waiting manifests only.
std::filesystem::path awaiting_marker(const std::filesystem::path& root, const std::string& run_id);

enum class Decision { approve, reject };

struct DecisionResult {
  enum class Outcome {
    recorded,      // an approval was counted; more approvers are needed
    approved,      // sealed as success
    rejected,      // sealed as denied
    expired,       // the deadline had passed: sealed as denied by rule, the decision was not taken
    not_awaiting,  // the run is not waiting for a decision (running, or already decided)
    unverified,    // the bundle does not verify (store/bundle_verify.hpp): nothing was decided
    duplicate,     // this approver has already approved this run
    not_found,
    elsewhere,  // a copy of another node's run (control/run_copy.hpp): decide on that node
    invalid,    // the request itself is wrong (god-mode without a reason, god-mode reject)
    from_run,  // asked from inside a run's process tree (control/run_origin.hpp): nothing was read or written
    error,
  };
  Outcome outcome = Outcome::error;
  std::string message;      // one line for a human
  nlohmann::json manifest;  // the manifest after the decision, when there is a bundle
};

// A person's decision (an OS user or a token holder) asked from inside a run's process tree is refused with
// `from_run` before anything is read; cp-host's own rules (the deadline) are not people and are not asked.
DecisionResult decide(const std::filesystem::path& root, const std::string& run_id, Decision decision,
                      const Actor& actor);

// Seals as denied every waiting run whose deadline has passed. Returns their ids. Never throws.
std::vector<std::string> expire_overdue(const std::filesystem::path& root);

// The runs waiting for a decision, oldest request first (overdue ones are denied first):
// [{run_id, task_id, pack, requested_at, deadline?, approvers_required, approvals, approval_pack}].
nlohmann::json list_pending(const std::filesystem::path& root);

// "approved", "rejected", ... for messages and JSON answers.
const char* outcome_name(DecisionResult::Outcome o);

}  // namespace cp::control
