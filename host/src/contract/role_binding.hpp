// Who owns and who does a task, resolved against the compiled role registry. A run persists this in its
// manifest, so post-run surfaces (workflow cases) read the same binding the intake preview showed.
#pragma once

#include <nlohmann/json.hpp>

namespace cp::contract {

// {source, authority, owner, assigned}: registered roles (policies/role_registry.json), the runners each
// may use and whether the contract's runner is one of them (policies/role_config.json), the assigned
// role's prompt (its ref and sha256), who may approve. `authority` is "enforced" when the contract was
// compiled with a role config (validation refused a runner the role may not use), else "advisory".
// `compiled` is a compiled contract document.
nlohmann::json role_binding_summary(const nlohmann::json& compiled);

}  // namespace cp::contract
