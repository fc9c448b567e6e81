// A third-party gate: every changed file that still exists starts with a license header line.
// Built against the installed SDK only; no JSON library, to show the SDK asks for nothing else.
#include <cortexpilot/plugin.hpp>

#include <fstream>
#include <regex>
#include <string>

class LicenseHeaderGate : public cp::Gate {
 public:
  LicenseHeaderGate(cp::Context&, const std::string&) {}
  std::string evaluate(cp::Context& ctx, const std::string& input) override {
    // Pull "path" values of the changes out of the input; good enough for a sample without a JSON library.
    std::regex path_re("\"path\"\\s*:\\s*\"([^\"]+)\"");
    int missing = 0, checked = 0;
    for (std::sregex_iterator it(input.begin(), input.end(), path_re), end; it != end; ++it) {
      std::ifstream f(ctx.workspace() + "/" + (*it)[1].str());
      if (!f) continue;
      std::string first;
      std::getline(f, first);
      ++checked;
      if (first.find("SPDX-License-Identifier") == std::string::npos) ++missing;
    }
    return std::string("{\"verdict\":\"") + (missing ? "fail" : "pass") + "\",\"summary\":\"" +
           std::to_string(missing) + " of " + std::to_string(checked) + " file(s) lack a license header\"}";
  }
};

CP_PLUGIN("license-header-gate", "1.0.0",
          cp::gate<LicenseHeaderGate>("license_header", "1.0.0", "Changed files carry an SPDX header"))
