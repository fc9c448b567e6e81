// What every chain execution writes the same way, whether `cp-host chain run` runs it in one process
// (chain_runner) or `serve` runs its steps from the queue (chain_queue): the chain bundle's manifest, a
// step's change carried onto the chain branch, a handoff marked, a quorum evaluated, and the end — the
// lifecycle, reports/chain_report.json, the incident pack when it did not succeed, CHAIN_COMPLETED and the
// seal. The chain views (chain_view) read what these write.
#pragma once

#include "chain/chain_spec.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace cp::store {
class Bundle;
}

namespace cp::chain {

// The chain bundle's manifest as it is created (kind "chain", runner "chain", status "created").
nlohmann::json chain_manifest(const ChainSpec& spec, const std::string& run_id,
                              const std::filesystem::path& repo, const std::string& baseline_commit);

// The branch a chain's steps move forward: cp-chain/<chain run id>.
std::string chain_branch(const std::string& chain_run_id);

// A passed task step's change committed onto the chain branch (control::promote under a rule actor: no
// working tree is touched). Asking again for a run already promoted onto that branch answers the commit it
// made: a carry interrupted after the promotion is finished, not repeated.
struct Carried {
  bool ok = true;
  std::string commit;  // the branch's new head; empty when the step changed nothing
  std::string error;   // !ok: why the change could not be carried
};
Carried carry_forward(const std::filesystem::path& root, const std::string& step_run_id,
                      const std::string& branch, const std::string& chain_run_id, const std::string& step_id);

// CHAIN_HANDOFF_STEP_MARKED's payload for handoff step `st`, after the run `previous_run_id` (or null).
nlohmann::json handoff_mark(const Step& st, const nlohmann::json& previous_run_id);

// CHAIN_QUORUM_EVALUATED's payload: `votes` [{reviewer, run_id, verdict, approve}].
nlohmann::json quorum_evaluation(const Step& st, const nlohmann::json& votes);

// How a chain ended, for its seal.
struct ChainEnd {
  std::string verdict = "success", reason = "every step passed";
  nlohmann::json failed_step;  // {step_id, role, run_id, verdict, reason}; null when none failed
  nlohmann::json steps_report = nlohmann::json::array();  // [{step_id, kind, role, run_ids, verdict, ...}]
  nlohmann::json handoffs = nlohmann::json::array();      // handoff_mark() payloads
  nlohmann::json quorums = nlohmann::json::array();       // quorum_evaluation() payloads
  nlohmann::json step_verdicts = nlohmann::json::object();
  std::vector<std::string> observed_roles;  // roles of the steps that passed, in order
  std::string final_commit;                 // the chain branch's head when a step moved it
};

// Seals the chain bundle `b`: CHAIN_LIFECYCLE_EVALUATED, reports/chain_report.json, the incident pack
// naming the failed step (any verdict but success), CHAIN_COMPLETED, RUN_SEALED, the governance line.
// `extra_report` fields are merged into the report (a queued chain's origin and items). Returns the report.
// Throws when the bundle cannot be written.
nlohmann::json seal_chain(const std::filesystem::path& root, store::Bundle& b, const ChainSpec& spec,
                          const std::filesystem::path& repo, const std::string& baseline_commit,
                          const std::string& branch, const ChainEnd& end,
                          const nlohmann::json& extra_report = nlohmann::json::object());

}  // namespace cp::chain
