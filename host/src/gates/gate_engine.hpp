// Runs a pack's gates over a finished run, in pack order, each fail-closed: a plugin error, a malformed
// verdict, a crash caught at the boundary or a gate past its deadline is verdict "error", never "pass".
// Each gate's report goes to reports/gate_<id>.json and an event (GATE_PASSED / GATE_FAILED / GATE_WARNED /
// GATE_ERRORED / GATE_SKIPPED) to the run's log.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}
namespace cp::store {
class Bundle;
}

namespace cp::os {
struct Confinement;
}

namespace cp::gates {

struct GateSpec {
  std::string plugin;                    // gate plugin id
  bool required = true;                  // an optional gate's fail only warns
  nlohmann::json config;                 // null: the plugin's configured default (policies/plugins.json)
  std::chrono::milliseconds timeout{0};  // 0: GateRunOptions::gate_timeout
};

struct GateResult {
  std::string gate_id;
  bool required = true;
  std::string verdict;  // pass | fail | warn | error | skipped
  std::string summary;
  std::string report;       // bundle-relative path of the report, empty when skipped
  nlohmann::json document;  // the report as written
};

struct GateRunOptions {
  nlohmann::json input;           // the gate input document (schemas/gate_input.schema.json)
  std::vector<std::string> skip;  // gate ids not to run (e.g. tests after a failed runner)
  std::string skip_reason;
  std::chrono::milliseconds gate_timeout{std::chrono::minutes(30)};
  const std::atomic<bool>* cancel = nullptr;  // the run's cancel flag, passed to the gates' spawns
  // The run's sandbox and cgroup: what a gate spawns (acceptance tests) is confined like the runner's.
  std::shared_ptr<const os::Confinement> confinement;
};

std::vector<GateResult> run_gates(const plugin::Registry& registry, const std::vector<GateSpec>& gates,
                                  const GateRunOptions& options, store::Bundle& bundle);

}  // namespace cp::gates
