#include "control/agents_overview.hpp"

#include "control/role_config_service.hpp"
#include "plugin/registry.hpp"

#include <algorithm>

namespace cp::control {

using nlohmann::json;

json agents_overview(const std::filesystem::path& root, const plugin::Registry* registry) {
  json out = roles_overview(root);
  json runners = json::array();
  if (registry)
    for (const auto& p : registry->plugins()) {
      if (p.kind != plugin::Kind::runner) continue;
      json r = plugin::to_json(p, false);
      r.erase("kind");
      r["isolation"] = p.isolation;
      // Which roles may use this runner: those whose allowed_runners name it, or that name none.
      json roles = json::array();
      for (const auto& role : out["roles"]) {
        const json& allowed = role["allowed_runners"];
        if (allowed.is_null() || std::find(allowed.begin(), allowed.end(), p.id) != allowed.end())
          roles.push_back(role["role"]);
      }
      r["roles"] = roles;
      runners.push_back(r);
    }
  out["runners"] = runners;
  return out;
}

}  // namespace cp::control
