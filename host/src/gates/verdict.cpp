#include "gates/verdict.hpp"
#include "core/json_depth.hpp"

#include "core/schema_catalog.hpp"

#include <nlohmann/json.hpp>

namespace cp::gates {

using nlohmann::json;

json error_verdict(const std::string& summary) {
  return json{{"verdict", "error"},
              {"summary", summary},
              {"diagnostics",
               json::array({json{{"severity", "error"}, {"message", summary}, {"rule", "fail_closed"}}})}};
}

json verdict_from(const plugin::CallOutcome& outcome) {
  if (!outcome.ok()) return error_verdict("gate call failed: " + outcome.error);
  if (!core::json_depth_ok(outcome.output))
    return error_verdict("gate returned JSON nested more than " + std::to_string(core::kMaxJsonDepth) +
                         " levels deep");
  json doc;
  try {
    doc = json::parse(outcome.output);
  } catch (const json::parse_error& e) {
    return error_verdict(std::string("gate returned invalid JSON: ") + e.what());
  }
  auto violations = core::schema("gate_verdict").validate(doc);
  if (!violations.empty()) {
    const auto& v = violations.front();
    return error_verdict("gate returned a verdict that breaks schemas/gate_verdict.schema.json at " +
                         (v.pointer.empty() ? std::string("/") : v.pointer) + " (" + v.rule +
                         "): " + v.message);
  }
  return doc;
}

}  // namespace cp::gates
