// Chains through the queue. A queued chain is a queue item (kind "chain", id = the chain's run id) whose
// steps are queue items with dependencies: each task step one item, each reviewer of a review step one
// item, each depending on the items of the steps it waits for (chain_spec.hpp: depends_on, parallel_group,
// the overlap rule), locking its contract's allowed_paths plus the step's exclusive_paths. The chain's own
// item depends on every step item and runs whatever they ended with; `serve` seals the chain bundle when
// it takes it. So `serve` runs the steps within its concurrency limit and path locks, a restart (kill -9
// included) finds them in the queue, and the API shows them.
//
// How the steps pass work forward, as `cp-host chain run` does: a step starts from the chain branch
// cp-chain/<run id> (its run records the chain link), and a passed task step's change is committed onto
// that branch before its item counts as passed, so whatever waits for it starts from it (chain_driver.hpp).
// A step may fail without ending the chain when it says continue_on_fail; otherwise its failure (or a
// missed quorum) ends the chain: the steps that have not started are cancelled. A step whose pack requires
// approval ends awaiting_approval; what waits for it waits for a person's decision (POST
// /api/runs/{id}/approve, `cp-host approve`), on whichever serve runs then; a rejection, or the approval
// deadline passing, ends the chain with an incident naming the step.
//
// Every step contract is checked (`cp-host validate`'s checks) before anything is queued, and the chain
// with all its items is recorded in one step of the queue: on any error nothing is queued.
#pragma once

#include "contract/validation.hpp"
#include "control/actor.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::chain {

struct QueuedChainRequest {
  nlohmann::json chain;            // the task chain document (schemas/task_chain.schema.json)
  std::filesystem::path base_dir;  // contract file paths in it are relative to this
  // Contract files only inside base_dir (no absolute path, no "..", no link out): a chain that came over
  // the API names files of the project, never any file the server could read.
  bool confine_paths = false;
  std::string source = "request body";  // how diagnostics name the document (a file path)
  std::string source_text;              // its bytes, when known (diagnostics' line numbers)
  std::string pointer_prefix;           // "/chain" when the document came wrapped in a request body
  std::filesystem::path repo;           // the git repository the steps run on
  std::filesystem::path root, plugins_dir;
  const plugin::Registry* registry = nullptr;  // checks plugin references when set (not owned)
  std::string submitted_by;                    // a token id or an OS user
  std::string origin;                          // free text shown in the views ("intake:<id>", "cli")
  int priority = 5;                            // of every item of the chain, 0..9
};

struct QueuedChainResult {
  enum class Outcome { queued, invalid, conflict } outcome = Outcome::invalid;
  std::vector<contract::Diagnostic>
      diagnostics;  // invalid: the chain's, and its contracts', as validate says
  std::string error;
  // queued: the id of this chain execution: its run id (GET /api/chains/{id}, queued_chain_view), its chain
  // item's id in the queue, and its bundle's id once sealed. The document's own chain_id is view.chain_id.
  std::string chain_id;
  nlohmann::json view;  // queued: queued_chain_view()
};

QueuedChainResult submit_queued_chain(const QueuedChainRequest& req);

// A queued chain step by step (docs/api.md, Chains): what chain_view shows of a chain bundle — run_id,
// chain_id, status, verdict, steps with their runs, handoffs, quorums — plus the queue: each step's state
// (pending, queued, running, awaiting_approval, done, cancelled, not_run), item ids, run id, verdict,
// started_at/finished_at, depends_on, parallel_group, continue_on_fail; the handoffs and votes; the chain's
// state (queued, running, awaiting_approval, ending, done, cancelled), origin and submitter. nullopt when
// no chain of that id was queued.
std::optional<nlohmann::json> queued_chain_view(const std::filesystem::path& root,
                                                const std::string& chain_id);

// The queued chains that have not been sealed yet, newest first, as list rows (run_id, chain_id, title,
// status, state, created_at, origin, submitted_by, steps, steps_done).
std::vector<nlohmann::json> list_queued_chains(const std::filesystem::path& root);

struct CancelChainResult {
  enum class Outcome { cancelled, not_found, already_ended } outcome = Outcome::not_found;
  std::string message;
  int cancelled = 0;  // steps that had not started, now cancelled
  int stopping = 0;   // running steps asked to stop (their runs seal cancelled)
  int rejected = 0;   // steps awaiting approval, denied by rule (nobody needs the decision any more)
  nlohmann::json view;
};

// Cancels a queued chain: its steps that have not started never will, running ones are stopped (the
// scheduler sends their runs SIGTERM), waiting approvals are denied by rule; the chain then seals
// cancelled. Recorded as the host event CHAIN_CANCELLED.
CancelChainResult cancel_queued_chain(const std::filesystem::path& root, const std::string& chain_id,
                                      const control::Actor& by, const std::string& reason);

}  // namespace cp::chain
