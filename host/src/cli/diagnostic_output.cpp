#include "cli/diagnostic_output.hpp"

#include <iostream>

namespace cp::cli {

void print_diagnostics(const std::vector<contract::Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) std::cerr << contract::diagnostic_line(d) << "\n";
}

nlohmann::json diagnostics_json(const std::vector<contract::Diagnostic>& diagnostics) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : diagnostics)
    out.push_back({{"file", d.file},
                   {"line", d.line},
                   {"pointer", d.pointer},
                   {"rule", d.rule},
                   {"message", d.message}});
  return out;
}

}  // namespace cp::cli
