// The run engine: one task contract, end to end: validate, compile,
// probe, worktree, runner, collect, gates, seal. Every run that gets past validation ends in a sealed
// bundle, whatever happens: an exception, a runner that misbehaves or a signal seals it as error/cancelled
// with the reason, never as a pass.
#pragma once

#include "contract/compiler.hpp"
#include "contract/validation.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
struct PluginInfo;
}  // namespace cp::plugin

namespace cp::run {

struct RunRequest {
  std::filesystem::path contract_path;
  std::filesystem::path repo = ".";  // the git repo the worktree is made from
  std::filesystem::path root = ".";  // packs/, policies/ and the runtime folder
  std::filesystem::path plugins_dir;
  const std::atomic<bool>* interrupt = nullptr;      // set by SIGINT/SIGTERM: cancel the run
  std::function<void(const std::string&)> progress;  // one human line per step; may be empty
  bool keep_worktree = false;  // keep the worktree after sealing (default: per rollback)
  // Set by the scheduler, which names the run before it starts so a crash can be traced to the item.
  std::string run_id;         // empty: a new one
  std::string queue_item_id;  // recorded in the manifest as queue.item_id
  int attempt = 0;            // recorded as queue.attempt when queue_item_id is set
  // Replay: run the compiled contract stored in this earlier run's bundle (not contract_path), from the
  // same baseline commit, in the same repository unless `repo` is given; the manifest records replay_of.
  std::string replay_of;
  bool repo_given = false;  // with replay_of: use `repo` instead of the earlier run's
  // Run again: the compiled contract stored in this earlier run's bundle (checked as a replay checks it, so
  // the new run records the same contract_sha256), but from the contract's rollback.baseline_ref as it
  // resolves now, in `repo`; the manifest records from_run. Not with replay_of.
  std::string from_run;
  // Start from this commit instead of the contract's rollback.baseline_ref (a chain step continuing from
  // the previous step's result). The contract itself is not changed.
  std::string baseline_override;
  // Set when the run is a step of a chain: {run_id, step_id, role}, recorded in the manifest as `chain`.
  nlohmann::json chain_link;
  // More places the run's sandbox hides (serve's token file, key folders); the runtime root and the
  // repository are always hidden.
  std::vector<std::filesystem::path> hidden_paths;
};

struct RunOutcome {
  enum class Stage { invalid, internal, sealed };
  Stage stage = Stage::internal;
  std::vector<contract::Diagnostic> diagnostics;  // stage invalid: what is wrong with the input
  std::string error;                              // stage invalid/internal: the message
  bool not_found = false;  // stage invalid: the run named was not found, or its bundle does not verify
  std::string run_id;
  std::filesystem::path bundle_dir;
  std::string status;   // sealed | awaiting_approval
  std::string verdict;  // success | failure | denied | timeout | cancelled | error (empty when awaiting)
  std::string reason;
  nlohmann::json manifest;
};

RunOutcome run_contract(const RunRequest& request);

// What a run starts from once its input is known good: the compiled contract and the loaded plugins.
struct Prepared {
  contract::CompiledContract compiled;
  std::unique_ptr<plugin::Registry> registry;
  const plugin::PluginInfo* runner = nullptr;  // points into *registry
};

// Loads the plugin folder into `reg` with <root>/policies/plugins.json applied (when present) and logs each
// refused library. Throws std::runtime_error when the folder or the policy is unusable.
void load_plugins(const std::filesystem::path& root, const std::filesystem::path& plugins_dir,
                  plugin::Registry& reg);

// Steps 1 and 2 of a run (validate, compile) plus loading the plugins and finding the runner. Writes
// nothing. On bad input returns false with `o` set to stage invalid, the diagnostics and the message.
bool prepare_run(const std::filesystem::path& contract_path, const std::filesystem::path& root,
                 const std::filesystem::path& plugins_dir, Prepared& p, RunOutcome& o);

// The replay counterpart of prepare_run: the compiled contract of run `run_id` (contract.json), checked
// against its schema and against the sha256 its manifest recorded, plus the plugins and the runner.
bool prepare_replay(const std::string& run_id, const std::filesystem::path& root,
                    const std::filesystem::path& plugins_dir, Prepared& p, RunOutcome& o);

// cp-host run's exit code for an outcome (documented in docs/cli.md).
int exit_code_for(const RunOutcome& outcome);
// The part of it that depends on the verdict alone (0 success, 4 failure, 5 denied, 6 timeout, 7 cancelled,
// 8 error or anything else); `cp-host chain run` uses the same codes for a chain's verdict.
int exit_code_for_verdict(const std::string& verdict);

// The verdict of a run from what its runner and gates said (exposed for tests). Priority, highest first:
// denied (a rule was broken: runner refused a command, or a required policy gate failed), cancelled,
// timeout, error (runner error or any required gate error), failure, success. A policy gate is one whose
// descriptor declares CP_FLAG_GATE_POLICY (plugin/registry.hpp: effective_gate_flags); no id is special.
struct VerdictInputs {
  std::string runner_status;  // completed | failed | denied | timeout | cancelled | error
  bool interrupted = false;   // SIGINT/SIGTERM reached cp-host
  bool deadline_hit = false;  // the contract's wall time ran out
  struct Gate {
    std::string id, verdict;
    bool required = true;
    bool policy = false;  // CP_FLAG_GATE_POLICY: a required fail means the run broke a rule (denied)
  };
  std::vector<Gate> gates;
};
std::pair<std::string, std::string> decide_verdict(const VerdictInputs& in);  // {verdict, reason}

}  // namespace cp::run
