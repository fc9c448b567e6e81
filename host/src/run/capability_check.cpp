#include "run/capability_check.hpp"

#include "os/process.hpp"
#include "plugin/probe_call.hpp"
#include "plugin/registry.hpp"

namespace cp::run {

using nlohmann::json;

bool contract_needs_tools(const json& contract) {
  json perms = contract.value("tool_permissions", json::object());
  return perms.value("shell", "allowlist") != "deny" ||
         perms.value("filesystem", "workspace-write") != "read-only" ||
         !perms.value("mcp_tools", json::array()).empty();
}

CapabilityCheck check_capabilities(const plugin::Registry& reg, const plugin::PluginInfo& runner,
                                   const json& contract) {
  CapabilityCheck out;
  json& s = out.summary;
  s = {{"runner", runner.id}};
  std::filesystem::path git = os::find_program("git");
  s["git"] = git.empty() ? json(nullptr) : json(git.string());
  if (git.empty()) out.problem = "git is not in PATH: the run's worktree cannot be made";
  json probes = json::object();
  bool needs_tools = contract_needs_tools(contract);
  for (const auto& cap : runner.capabilities) {
    if (cap.rfind("probe:", 0) != 0) continue;
    std::string id = cap.substr(6);
    const auto* info = reg.find(id);
    json answer = info && info->kind == plugin::Kind::probe
                      ? plugin::call_probe(*info)
                      : json{{"status", "error"},
                             {"capabilities", json::object()},
                             {"ttl_seconds", 0},
                             {"message", "probe plugin '" + id + "' is not loaded"}};
    std::string status = answer.value("status", "error");
    probes[id] = status;
    json caps = answer.value("capabilities", json::object());
    for (const char* k : {"lane", "compat_api_mode", "provider_status", "tool_execution"})
      if (caps.contains(k)) s[k] = caps[k];
    if (out.problem.empty() && status != "ok")
      out.problem = "probe " + id + ": " + answer.value("message", status);
    if (out.problem.empty() && needs_tools && caps.contains("tool_execution") &&
        caps["tool_execution"] == false)
      out.problem =
          "probe " + id + ": the provider (" + caps.value("model", "?") + " at " +
          caps.value("base_url", "?") + ") is " + caps.value("provider_status", "not tool-capable") +
          ", but the contract needs tool execution (tool_permissions allow commands or file writes); use a "
          "tool-capable provider or set tool_permissions to shell deny and filesystem read-only";
    out.answers[id] = std::move(answer);
  }
  s["probes"] = probes;
  s["tool_execution_required"] = needs_tools;
  return out;
}

}  // namespace cp::run
