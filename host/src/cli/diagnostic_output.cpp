#include "cli/diagnostic_output.hpp"
#include "cli/project_root.hpp"

#include <iostream>

namespace cp::cli {

void print_diagnostics(const std::vector<contract::Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) std::cerr << contract::diagnostic_line(d) << "\n";
  if (root_dependent(diagnostics)) std::cerr << root_hint(project_root()) << "\n";
}

}  // namespace cp::cli
