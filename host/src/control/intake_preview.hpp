// What a run of a contract would be, said before anything runs: the advisory execution_plan_report
// (contract, gates, predicted outputs, runtime capabilities) and the role_contract_summary. Both are read
// surfaces only: the contract stays the one execution authority, and nothing here writes a run.
// Its role binding is contract/role_binding.hpp's, the one a run persists in its manifest.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace cp::contract {
struct Diagnostic;
}
namespace cp::run {
struct Prepared;
}

namespace cp::control {

struct PreviewResult {
  bool ok = false;                                // false: the contract is invalid (diagnostics/error)
  std::vector<contract::Diagnostic> diagnostics;  // what is wrong, when not ok
  std::string error;
  nlohmann::json report;  // schemas/execution_plan_report.schema.json, when ok
};

// Validates and compiles `contract_path` like a run would, runs the runner's probes (they spawn at most a
// `--version`), and predicts the run's outputs. Writes nothing under the runtime root.
PreviewResult intake_preview(const std::filesystem::path& contract_path, const std::filesystem::path& root,
                             const std::filesystem::path& plugins_dir);

// The execution_plan_report of a contract already compiled and its plugins loaded (run/engine.hpp's
// prepare_run or prepare_replay): what intake_preview reports, and what a re-queue's preview shows.
nlohmann::json execution_plan(const run::Prepared& prep);

}  // namespace cp::control
