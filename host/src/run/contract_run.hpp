// One run of a contract, from its resolved inputs to its seal: the numbered steps of run_contract()
// (run/engine.hpp) as methods over the state they share. Internal to run/.
#pragma once

#include "gates/gate_engine.hpp"
#include "os/confinement.hpp"
#include "run/disk_budget.hpp"
#include "run/engine.hpp"
#include "run/run_sandbox.hpp"
#include "run/runner_driver.hpp"
#include "run/workspace.hpp"
#include "store/bundle.hpp"
#include "store/host_key.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cp::run {

struct ContractRun {
  ContractRun(const RunRequest& request, RunOutcome& outcome, Prepared prepared,
              nlohmann::json replayed_manifest);

  // The repository and baseline commit, the thread to resume, the host key, and the recovery of bundles a
  // crash left open. False (the outcome says why) when the run cannot start: nothing is written.
  bool resolve_inputs();
  // 3. The bundle, under runs/ with its lock held. False when it cannot be made.
  bool create_bundle();
  // 4-8: probe, workspace, sandbox, runner, collect, gates and the verdict. An error in any step is the
  // verdict `error`, and the run is still sealed.
  void execute();
  // 9. Stops what is left of the run, then writes the reports and seals.
  void seal();

 private:
  void say(const std::string& line) const {
    if (req.progress) req.progress(line);
  }
  store::EventLog& events() { return bundle->events(); }
  void probe();
  void make_workspace();
  void confine();
  void run_runner();
  void collect();
  void judge();
  void release();
  nlohmann::json task_result_doc() const;

  const RunRequest& req;
  RunOutcome& o;
  Prepared prep;
  nlohmann::json replayed;  // the manifest of the run being replayed
  const contract::CompiledContract& compiled;
  plugin::Registry& reg;
  const plugin::PluginInfo* runner_info;
  const nlohmann::json& c;  // the compiled contract's `contract`
  std::string task_id, runner_id, pack_id;

  std::string baseline_commit;
  std::filesystem::path repo_arg;
  nlohmann::json resume;
  std::shared_ptr<const store::HostKey> host_key;
  std::vector<std::string> used;
  std::vector<gates::GateSpec> gate_specs;
  std::filesystem::path repo;
  std::unique_ptr<store::Bundle> bundle;

  std::chrono::steady_clock::time_point t0;
  std::string verdict, reason;
  nlohmann::json runner_result = runner_error("the runner did not run");
  nlohmann::json gate_summaries = nlohmann::json::array();
  std::set<std::string> policy_gates;  // gates of the pack declaring CP_FLAG_GATE_POLICY
  nlohmann::json changes = nlohmann::json::array();
  std::string diff_sha;
  std::optional<Workspace> ws;
  bool abandoned = false;
  std::atomic<bool> cancel_flag{false};
  std::shared_ptr<os::Confinement> confinement;
  std::unique_ptr<DiskBudget> disk;
  std::filesystem::path run_tmp;
  RunPlaces places;
  RunnerReport rep;
  std::string collect_denial;
};

}  // namespace cp::run
