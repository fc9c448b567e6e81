// Gate `policy`: declarative rules, written in JSON (policies/policy_rules.json,
// schemas/policy_rules.schema.json) and named by the pack that applies them, judged against the run: what
// changed, the diff's size, the commands the agent executed, the acceptance tests' results and the usage.
// Each rule has an id and a message that lands in the report when the rule is broken. A rule the gate cannot
// evaluate (unknown id, unknown kind, missing evidence) is an error, never a pass.
#include "../../common/forbidden_match.hpp"
#include "../../common/path_match.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "rules": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[a-z][a-z0-9_.-]*$"},
              "description": "Ids of rules in policies/policy_rules.json that this pack applies (set in the pack's gate config)."}
  }
})";

struct Finding {
  std::string rule, message, value;
};

class PolicyGate : public cp::Gate {
 public:
  PolicyGate(cp::Context&, const std::string& config_json) {
    rule_ids_ = json::parse(config_json).value("rules", std::vector<std::string>{});
  }

  std::string evaluate(cp::Context&, const std::string& input_json) override {
    if (rule_ids_.empty())
      throw cp::Error(CP_E_INVALID,
                      "no rules named: give the gate {\"rules\": [...]} in the pack's gate config");
    json in = json::parse(input_json);
    json defs = in.contains("policies")
                    ? in["policies"].value("policy_rules", json::object()).value("rules", json::array())
                    : json::array();
    json diags = json::array();
    int broken = 0, checked = 0;
    for (const auto& id : rule_ids_) {
      const json* rule = nullptr;
      for (const auto& d : defs)
        if (d.value("id", "") == id) rule = &d;
      if (!rule)
        throw cp::Error(CP_E_INVALID, "rule '" + id + "' is not defined in policies/policy_rules.json");
      ++checked;
      for (const auto& f : judge(*rule, in)) {
        ++broken;
        json d{{"severity", "error"}, {"rule", f.rule}, {"message", f.message}};
        if (!f.value.empty()) d["value"] = f.value;
        diags.push_back(d);
      }
    }
    bool pass = broken == 0;
    json verdict{{"verdict", pass ? "pass" : "fail"},
                 {"summary", pass ? "all " + std::to_string(checked) + " policy rule(s) hold"
                                  : std::to_string(broken) + " policy rule violation(s)"},
                 {"diagnostics", diags},
                 {"details", {{"rules", rule_ids_}}}};
    if (!pass)
      verdict["next_action"] =
          "The run broke a policy rule: the policy report names each rule and its message; change the task "
          "so "
          "the result keeps the rules, and run it again.";
    return verdict.dump();
  }

 private:
  static std::string say(const json& rule, const std::string& what) {
    std::string m = rule.value("message", "");
    return m.empty() ? what : m + " (" + what + ")";
  }

  std::vector<Finding> judge(const json& rule, const json& in) const {
    std::string id = rule.value("id", ""), kind = rule.value("kind", "");
    std::vector<Finding> out;
    if (kind == "path_forbidden") {
      for (const auto& c : in.value("changes", json::array())) {
        std::string path = c.value("path", "");
        for (const auto& g : rule.value("globs", json::array()))
          if (cp::plugins::path_allowed(g.get<std::string>(), path))
            out.push_back({id, say(rule, path + " matches " + g.get<std::string>()), path});
      }
    } else if (kind == "diff_max_added_lines" || kind == "diff_max_changed_files") {
      long long max = rule.at("max").get<long long>();
      long long value = 0;
      if (kind == "diff_max_changed_files") {
        value = static_cast<long long>(in.value("changes", json::array()).size());
      } else {
        std::ifstream patch(fs::path(in.value("bundle_dir", "")) / "artifacts/diff.patch");
        if (!patch) throw cp::Error(CP_E_INVALID, "rule '" + id + "': artifacts/diff.patch is missing");
        for (std::string line; std::getline(patch, line);)
          if (line.size() > 0 && line[0] == '+' && line.rfind("+++", 0) != 0) ++value;
      }
      if (value > max)
        out.push_back(
            {id, say(rule, std::to_string(value) + " > " + std::to_string(max)), std::to_string(value)});
    } else if (kind == "command_forbidden") {
      std::shared_ptr<const re2::RE2> re;
      try {
        re = cp::plugins::compile_pattern(rule.at("pattern").get<std::string>(), "rule '" + id + "'");
      } catch (const std::invalid_argument& e) {
        throw cp::Error(CP_E_INVALID, e.what());
      }
      for (const auto& c : in.value("commands", json::array())) {
        std::string cmd = c.is_object() ? c.value("command", "") : "";
        if (cp::plugins::command_matches(*re, c)) out.push_back({id, say(rule, "executed: " + cmd), cmd});
      }
    } else if (kind == "acceptance_test_passed") {
      std::string test = rule.at("test").get<std::string>();
      std::ifstream rep(fs::path(in.value("bundle_dir", "")) / "reports/gate_acceptance_tests.json");
      json doc = rep ? json::parse(rep, nullptr, false) : json();
      if (!doc.is_object())
        throw cp::Error(CP_E_INVALID,
                        "rule '" + id + "': no acceptance_tests report (the gate must run before policy)");
      const json results = doc.value("details", json::object()).value("tests", json::array());
      const json* found = nullptr;
      for (const auto& r : results)
        if (r.value("name", "") == test) found = &r;
      if (!found)
        out.push_back({id, say(rule, "acceptance test '" + test + "' did not run"), test});
      else if (!found->value("passed", false))
        out.push_back(
            {id, say(rule, "acceptance test '" + test + "' failed: " + found->value("outcome", "")), test});
    } else if (kind == "usage_max") {
      std::string field = rule.at("field").get<std::string>();
      json usage = in.value("usage", json::object());
      double value = field == "tokens" ? usage.value("input_tokens", 0.0) + usage.value("output_tokens", 0.0)
                                       : usage.value(field, 0.0);
      double max = rule.at("max").get<double>();
      if (value > max)
        out.push_back(
            {id, say(rule, field + " " + json(value).dump() + " > " + json(max).dump()), json(value).dump()});
    } else {
      throw cp::Error(CP_E_INVALID, "rule '" + id + "' has unknown kind '" + kind + "'");
    }
    return out;
  }

  std::vector<std::string> rule_ids_;
};

}  // namespace

CP_PLUGIN("cp-gate-policy", "0.1.0",
          cp::gate<PolicyGate>("policy", "0.1.0",
                               "Declarative policy rules (policies/policy_rules.json) judged against the run",
                               kConfigSchema, R"(["diff", "commands", "reports", "usage"])",
                               CP_FLAG_GATE_POLICY))
