#include "cli/diagnostic_output.hpp"

#include <iostream>

namespace cp::cli {

void print_diagnostics(const std::vector<contract::Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) std::cerr << contract::diagnostic_line(d) << "\n";
}

}  // namespace cp::cli
