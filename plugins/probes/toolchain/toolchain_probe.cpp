// Probe `toolchain`: which agent-side tools are installed (git, codex, claude, chromium) and their versions,
// found by running `<tool> --version` through the host's process service.
#include "../../common/program_lookup.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace {

using nlohmann::json;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "tools": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9._+-]+$"},
              "description": "Program names to look for."},
    "required": {"type": "array", "items": {"type": "string"},
                 "description": "Tools whose absence makes the probe status 'missing'."},
    "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60000},
    "ttl_seconds": {"type": "integer", "minimum": 0}
  }
})";

class ToolchainProbe : public cp::Probe {
 public:
  ToolchainProbe(cp::Context&, const std::string& config_json) {
    json cfg = json::parse(config_json);
    tools_ = cfg.value("tools", std::vector<std::string>{"git", "codex", "claude", "chromium"});
    required_ = cfg.value("required", std::vector<std::string>{"git"});
    timeout_ms_ = cfg.value("timeout_ms", 5000);
    ttl_ = cfg.value("ttl_seconds", 300);
  }

  std::string probe(cp::Context& ctx) override {
    json caps = json::object();
    std::vector<std::string> missing;
    for (const auto& tool : tools_) {
      json t{{"present", false}};
      std::string path = cp::plugins::find_program(tool);
      if (!path.empty()) {
        cp::SpawnOptions opt;
        opt.argv = {path, "--version"};
        opt.timeout_ms = static_cast<uint64_t>(timeout_ms_);
        opt.capture_limit = 4096;
        opt.env =
            std::vector<std::string>{"PATH=" + std::string(std::getenv("PATH") ? std::getenv("PATH") : ""),
                                     "HOME=" + std::string(std::getenv("HOME") ? std::getenv("HOME") : "/")};
        cp::SpawnResult r = ctx.spawn(opt);
        t["present"] = true;
        t["path"] = path;
        t["version_ok"] = r.ok();
        std::string v = cp::plugins::trimmed_first_line(r.out.empty() ? r.err : r.out);
        if (!v.empty()) t["version"] = v;
        if (!r.ok()) t["error"] = r.timed_out ? "timed out" : "exit " + std::to_string(r.exit_code);
      }
      if (!t["present"].get<bool>()) {
        for (const auto& req : required_)
          if (req == tool) missing.push_back(tool);
      }
      caps[tool] = t;
    }
    json out{{"status", missing.empty() ? "ok" : "missing"}, {"capabilities", caps}, {"ttl_seconds", ttl_}};
    if (!missing.empty()) {
      std::string m = "required tool(s) not found in PATH:";
      for (const auto& x : missing) m += " " + x;
      out["message"] = m;
    }
    return out.dump();
  }

 private:
  std::vector<std::string> tools_;
  std::vector<std::string> required_;
  int timeout_ms_;
  int ttl_;
};

}  // namespace

CP_PLUGIN("cp-probe-toolchain", "0.1.0",
          cp::probe<ToolchainProbe>("toolchain", "0.1.0",
                                    "Finds git, codex, claude and chromium in PATH and reads their versions",
                                    kConfigSchema, R"(["spawn"])"))
