#include "contract/role_binding.hpp"

#include "contract/role_config.hpp"

#include <algorithm>
#include <string>

namespace cp::contract {

using nlohmann::json;

namespace {

json role_entry(const json& registry, const std::string& role) {
  for (const auto& r : registry.value("roles", json::array()))
    if (r.value("role", "") == role) return r;
  return nullptr;
}

json agent_binding(const json& registry, const json& config, const json& agent) {
  std::string role = agent.value("role", "");
  json r = role_entry(registry, role);
  json out{{"role", role}, {"agent_id", agent.value("agent_id", "")}, {"registered", r.is_object()}};
  if (r.is_object()) out["can_approve"] = r.value("can_approve", false);
  if (auto allowed = allowed_runners_of(config, role)) out["allowed_runners"] = *allowed;
  return out;
}

}  // namespace

json role_binding_summary(const json& compiled) {
  const json& c = compiled["contract"];
  const json& policies = compiled["policies"];
  const json registry = policies.value("role_registry", json::object());
  // Compiled without a role config (an older project): nothing restricts the runner, as before.
  const bool enforced = policies.contains("role_config");
  const json config = policies.value("role_config", json::object());
  std::string runner = c["runtime_options"].value("runner", "");
  json assigned = agent_binding(registry, config, c.value("assigned_agent", json::object()));
  // A role that names no allowed_runners allows any runner.
  bool allowed = true;
  if (assigned.contains("allowed_runners")) {
    const json& list = assigned["allowed_runners"];
    allowed = std::find(list.begin(), list.end(), runner) != list.end();
  }
  assigned["runner"] = runner;
  assigned["runner_allowed"] = allowed;
  if (compiled.contains("role_prompt")) {
    assigned["prompt_ref"] = compiled["role_prompt"].value("prompt_ref", "");
    assigned["prompt_sha256"] = compiled["role_prompt"].value("sha256", "");
  }
  return {{"source", "task_contract"},
          {"authority", enforced ? "enforced" : "advisory"},
          {"owner", agent_binding(registry, config, c.value("owner_agent", json::object()))},
          {"assigned", assigned}};
}

}  // namespace cp::contract
