// Gate `forbidden_actions`: nothing the run executed matches an action the contract forbids. Actions are
// named in the contract and defined (id, regex, reason) in policies/forbidden_actions.json, which the host
// passes in the gate input. An id with no definition is an error: an unchecked rule is not a pass.
#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <regex>

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
    json ids =
        in.contains("contract") ? in["contract"].value("forbidden_actions", json::array()) : json::array();
    json defs = json::array();
    if (in.contains("policies") && in["policies"].contains("forbidden_actions"))
      defs = in["policies"]["forbidden_actions"].value("actions", json::array());

    struct Rule {
      std::string id, reason;
      std::regex re;
    };
    std::vector<Rule> rules;
    for (const auto& id : ids) {
      const json* def = nullptr;
      for (const auto& d : defs)
        if (d.value("id", "") == id.get<std::string>()) def = &d;
      if (!def)
        throw cp::Error(CP_E_INVALID, "forbidden action '" + id.get<std::string>() +
                                          "' has no definition in policies/forbidden_actions.json");
      rules.push_back({id.get<std::string>(), def->value("reason", ""),
                       std::regex(def->value("pattern", ""), std::regex::ECMAScript)});
    }
    for (const auto& e : extra_)
      rules.push_back({e.value("id", ""), e.value("reason", ""), std::regex(e.value("pattern", ""))});

    json diags = json::array();
    for (const auto& c : in["commands"]) {
      std::string cmd = c.value("command", "");
      for (const auto& r : rules)
        if (std::regex_search(cmd, r.re))
          diags.push_back({{"severity", "error"},
                           {"rule", r.id},
                           {"value", cmd},
                           {"message", "executed command matches forbidden action '" + r.id + "': " + cmd +
                                           (r.reason.empty() ? "" : " (" + r.reason + ")")}});
    }
    bool pass = diags.empty();
    return json{{"verdict", pass ? "pass" : "fail"},
                {"summary", pass ? std::to_string(in["commands"].size()) + " command(s) checked against " +
                                       std::to_string(rules.size()) + " forbidden action(s)"
                                 : std::to_string(diags.size()) + " forbidden action(s) executed"},
                {"diagnostics", diags},
                {"details", {{"rules", rules.size()}, {"commands", in["commands"].size()}}}}
        .dump();
  }

 private:
  json extra_;
};

}  // namespace

CP_PLUGIN("cp-gate-forbidden-actions", "0.1.0",
          cp::gate<ForbiddenActionsGate>("forbidden_actions", "0.1.0",
                                         "No executed command matches a forbidden action of the contract",
                                         kConfigSchema, R"(["commands"])"))
