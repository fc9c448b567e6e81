// The agents a project can run: the runner plugins loaded (id, version, capabilities, isolation) and the
// roles (registry and config, contract/role_config.hpp), with which runners each role may use. What
// `cp-host agents list` prints and GET /api/agents answers.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

namespace cp::plugin {
class Registry;
}

namespace cp::control {

// {runners: [...], roles: [...], role_config: {path, exists, sha256, valid, problems}}; `registry` may be
// null (no runners listed).
nlohmann::json agents_overview(const std::filesystem::path& root, const plugin::Registry* registry);

}  // namespace cp::control
