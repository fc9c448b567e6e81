// Two runs side by side (typically a run and its replay): verdicts, gate outcomes, changed files, diff
// stats, usage and event-type counts. The report (schemas/run_compare_report.json) is written into run
// B's bundle as reports/run_compare_report.json (B is re-sealed with a REPORT_ADDED event), so a compare
// survives as a run-local report instead of transient UI state. Both bundles are verified first: a compare
// of a bundle that does not verify is refused.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace cp::control {

struct CompareResult {
  bool ok = false;
  int missing = 0;          // 0 ok; 1 when run A is missing, 2 when run B is
  bool unverified = false;  // a bundle does not verify (message says which and why)
  std::string message;      // why not, when not ok
  nlohmann::json report;
};

// Builds the report; with `write`, also stores it in B (atomically). Never throws.
CompareResult compare_runs(const std::filesystem::path& root, const std::string& run_a,
                           const std::string& run_b, bool write = true);

}  // namespace cp::control
