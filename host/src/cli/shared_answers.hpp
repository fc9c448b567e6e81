// What the CLI and `cp-host mcp` answer alike, so an agent through MCP and a user at the shell see the
// same exit codes and the same validation report.
#pragma once

#include "contract/validation.hpp"
#include "control/approvals.hpp"

#include <nlohmann/json.hpp>

namespace cp::cli {

// The exit code of `approve`/`reject` for a decision's outcome (the codes of commands.hpp).
int decision_exit(control::DecisionResult::Outcome o);

// `validate --format json`'s report: {ok, files_checked, files_invalid, error_count, duration_ms,
// diagnostics}.
nlohmann::json validation_report_json(const contract::ValidationReport& r);

}  // namespace cp::cli
