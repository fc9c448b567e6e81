// How the run-like commands (run, replay, chain run, intake preview, queue submit) report a refused input:
// one diagnostic_line() per problem on stderr, and the same problems in their --json output.
#pragma once

#include "contract/validation.hpp"

#include <vector>

namespace cp::cli {

// When a problem depends on the project root (a pack or policy it lacks), a last line names the root used
// and how to choose another.
void print_diagnostics(const std::vector<contract::Diagnostic>& diagnostics);
// The --json form of the same problems is contract::diagnostics_json.

}  // namespace cp::cli
