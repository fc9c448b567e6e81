// The URL policy a run gets: the contract's browser_policy, which may only narrow the operator's
// policies/browser_policy.json, and with the network denied only loopback origins at all. A contract
// that asks for more is refused (the run is denied), never quietly trimmed.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace cp::browser {

// `pointer`: where in the contract the excess is, e.g.
// /runtime_options/browser_tasks/browser_policy/allowed_origins/2
struct PolicyRefusal : std::runtime_error {
  PolicyRefusal(std::string pointer, const std::string& what)
      : std::runtime_error(what), pointer(std::move(pointer)) {}
  std::string pointer;
};

// The operator policy when a project has none: loopback origins only, no downloads, no file:// URLs.
nlohmann::json default_operator_policy();

// `network_allowed`: the contract's tool_permissions.network is "allow".
nlohmann::json effective_policy(const nlohmann::json& operator_policy, const nlohmann::json& browser_tasks,
                                bool network_allowed);

}  // namespace cp::browser
