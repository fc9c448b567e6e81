// Gate `forbidden_actions`: nothing the run executed matches an action the contract forbids. Actions are
// named in the contract and defined (id, RE2 pattern, reason) in policies/forbidden_actions.json, which the
// host passes in the gate input. The tool and agents runners refuse such a command before it starts, with
// the same matcher (plugins/common/forbidden_match.hpp); this gate judges afterwards what was reported as
// executed, which is what counts for agent CLIs that run commands themselves. An id with no definition or a
// pattern that does not compile is an error: an unchecked rule is not a pass.
#include "../../common/forbidden_match.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "extra_patterns": {"type": "array", "items": {"type": "object", "required": ["id", "pattern"],
                       "properties": {"id": {"type": "string"}, "pattern": {"type": "string"}, "reason": {"type": "string"}}},
                       "description": "Always-forbidden patterns on top of the contract's."}
  }
})";

class ForbiddenActionsGate : public cp::Gate {
 public:
  ForbiddenActionsGate(cp::Context&, const std::string& config_json) {
    extra_ = json::parse(config_json).value("extra_patterns", json::array());
  }

  std::string evaluate(cp::Context&, const std::string& input_json) override {
    json in = json::parse(input_json);
    if (!in.contains("commands") || !in["commands"].is_array())
      throw cp::Error(CP_E_INVALID, "gate input lacks /commands: the host must list what the run executed");
    cp::plugins::ForbiddenActions rules;
    try {
      rules = cp::plugins::ForbiddenActions::for_run(in.value("contract", json::object()),
                                                     in.value("policies", json::object()));
      for (const auto& e : extra_)
        rules.add(e.value("id", ""), e.value("pattern", ""), e.value("reason", ""));
    } catch (const std::invalid_argument& e) {
      throw cp::Error(CP_E_INVALID, e.what());
    }

    json diags = json::array();
    for (const auto& c : in["commands"]) {
      std::string cmd = c.is_object() ? c.value("command", "") : "";
      for (const auto& r : rules.rules())
        if (cp::plugins::command_matches(*r.re, c))
          diags.push_back({{"severity", "error"},
                           {"rule", r.id},
                           {"value", cmd},
                           {"message", "executed command matches forbidden action '" + r.id + "': " + cmd +
                                           (r.reason.empty() ? "" : " (" + r.reason + ")")}});
    }
    bool pass = diags.empty();
    json verdict{{"verdict", pass ? "pass" : "fail"},
                 {"summary", pass ? std::to_string(in["commands"].size()) + " command(s) checked against " +
                                        std::to_string(rules.size()) + " forbidden action(s)"
                                  : std::to_string(diags.size()) + " forbidden action(s) executed"},
                 {"diagnostics", diags},
                 {"details", {{"rules", rules.size()}, {"commands", in["commands"].size()}}}};
    if (!pass)
      verdict["next_action"] =
          "The run executed a forbidden action: see the forbidden_actions report; remove that step from the "
          "task before running it again.";
    return verdict.dump();
  }

 private:
  json extra_;
};

}  // namespace

CP_PLUGIN("cp-gate-forbidden-actions", "0.1.0",
          cp::gate<ForbiddenActionsGate>("forbidden_actions", "0.1.0",
                                         "No executed command matches a forbidden action of the contract",
                                         kConfigSchema, R"(["commands"])", CP_FLAG_GATE_POLICY))
