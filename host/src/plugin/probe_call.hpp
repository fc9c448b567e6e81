// Calling a probe plugin, fail-closed: a failed call or an answer that breaks
// schemas/probe_result.schema.json comes back as status "error" with the reason in "message".
#pragma once

#include "plugin/plugin_info.hpp"

#include <nlohmann/json_fwd.hpp>

namespace cp::plugin {

nlohmann::json call_probe(const PluginInfo& info);

}  // namespace cp::plugin
