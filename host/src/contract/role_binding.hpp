// Who owns and who does a task, resolved against the compiled role registry. A run persists this in its
// manifest, so post-run surfaces (workflow cases) read the same binding the intake preview showed.
#pragma once

#include <nlohmann/json.hpp>

namespace cp::contract {

// {source, authority: "advisory", owner, assigned}: registered roles, whether the runner is one the
// assigned role allows, who may approve. `compiled` is a compiled contract document.
nlohmann::json role_binding_summary(const nlohmann::json& compiled);

}  // namespace cp::contract
