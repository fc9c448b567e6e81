#include "contract/role_binding.hpp"

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

json agent_binding(const json& registry, const json& agent) {
  std::string role = agent.value("role", "");
  json r = role_entry(registry, role);
  json out{{"role", role}, {"agent_id", agent.value("agent_id", "")}, {"registered", r.is_object()}};
  if (r.is_object()) {
    out["can_approve"] = r.value("can_approve", false);
    if (r.contains("allowed_runners")) out["allowed_runners"] = r["allowed_runners"];
  }
  return out;
}

}  // namespace

json role_binding_summary(const json& compiled) {
  const json& c = compiled["contract"];
  const json registry = compiled["policies"].value("role_registry", json::object());
  std::string runner = c["runtime_options"].value("runner", "");
  json assigned = agent_binding(registry, c.value("assigned_agent", json::object()));
  // A role that names no allowed_runners allows any runner.
  bool allowed = true;
  if (assigned.contains("allowed_runners")) {
    const json& list = assigned["allowed_runners"];
    allowed = std::find(list.begin(), list.end(), runner) != list.end();
  }
  assigned["runner"] = runner;
  assigned["runner_allowed"] = allowed;
  return {{"source", "task_contract"},
          {"authority", "advisory"},
          {"owner", agent_binding(registry, c.value("owner_agent", json::object()))},
          {"assigned", assigned}};
}

}  // namespace cp::contract
