// Gate `required_outputs`: every output the contract lists exists where it should (worktree or bundle),
// inside that folder once symlinks and '..' are resolved, and is non-empty when the contract says so.
#include <cortexpilot/plugin.hpp>

#include "../../common/path_guard.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "extra_outputs": {
      "type": "array",
      "description": "Outputs required on top of the contract's, same shape as a contract's required_outputs entry.",
      "items": {"type": "object", "required": ["name", "path"]}
    }
  }
})";

class RequiredOutputsGate : public cp::Gate {
 public:
  RequiredOutputsGate(cp::Context&, const std::string& config_json) {
    json cfg = json::parse(config_json);
    extra_ = cfg.value("extra_outputs", json::array());
  }

  std::string evaluate(cp::Context&, const std::string& input_json) override {
    json in = json::parse(input_json);
    if (!in.contains("workspace") || !in["workspace"].is_string())
      throw cp::Error(CP_E_INVALID, "gate input lacks /workspace");
    fs::path workspace = in["workspace"].get<std::string>();
    fs::path bundle = in.value("bundle_dir", std::string());
    json outputs = json::array();
    if (in.contains("contract") && in["contract"].contains("required_outputs"))
      outputs = in["contract"]["required_outputs"];
    for (const auto& e : extra_) outputs.push_back(e);

    json diags = json::array();
    json checked = json::array();
    for (const auto& o : outputs) {
      std::string name = o.value("name", "?");
      std::string rel = o.value("path", "");
      std::string location = o.value("location", "worktree");
      bool non_empty = o.value("non_empty", false);
      fs::path base = location == "bundle" ? bundle : workspace;
      fs::path resolved;
      std::string why;
      json entry{{"name", name}, {"path", rel}, {"location", location}};
      if (base.empty()) {
        why = "no " + location + " folder in the gate input";
      } else if (!cp::plugins::resolve_inside(base, rel, resolved, why)) {
        // why already says how it escapes
      } else if (!fs::exists(resolved)) {
        why = "missing";
      } else if (!fs::is_regular_file(resolved)) {
        why = "not a regular file";
      } else if (non_empty && fs::file_size(resolved) == 0) {
        why = "empty, but the contract requires content";
      }
      entry["ok"] = why.empty();
      if (!why.empty()) {
        entry["problem"] = why;
        diags.push_back(
            {{"severity", "error"},
             {"rule", "required_output"},
             {"path", rel},
             {"message", "required output '" + name + "' (" + location + ":" + rel + "): " + why}});
      }
      checked.push_back(entry);
    }
    bool pass = diags.empty();
    json verdict{{"verdict", pass ? "pass" : "fail"},
                 {"summary", pass ? std::to_string(outputs.size()) + " required output(s) present"
                                  : std::to_string(diags.size()) + " of " + std::to_string(outputs.size()) +
                                        " required output(s) missing or invalid"},
                 {"diagnostics", diags},
                 {"details", {{"outputs", checked}}}};
    return verdict.dump();
  }

 private:
  json extra_;
};

}  // namespace

CP_PLUGIN("cp-gate-required-outputs", "0.1.0",
          cp::gate<RequiredOutputsGate>("required_outputs", "0.1.0",
                                        "Every output the contract requires exists, inside its folder",
                                        kConfigSchema, R"(["filesystem"])"))
