#include "plugin/plugin_info.hpp"

#include <nlohmann/json.hpp>

namespace cp::plugin {

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::runner:
      return "runner";
    case Kind::gate:
      return "gate";
    case Kind::probe:
      return "probe";
    case Kind::retention_lane:
      return "retention_lane";
    case Kind::planner:
      return "planner";
  }
  return "unknown";
}

std::optional<Kind> kind_from_name(std::string_view name) {
  for (Kind k : {Kind::runner, Kind::gate, Kind::probe, Kind::retention_lane, Kind::planner})
    if (kind_name(k) == name) return k;
  return std::nullopt;
}

nlohmann::json to_json(const plugin::PluginInfo& p, bool with_schema) {
  nlohmann::json j{{"id", p.id},
                   {"kind", std::string(kind_name(p.kind))},
                   {"version", p.version},
                   {"description", p.description},
                   {"abi", std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor)},
                   {"library", p.library_path.filename().string()},
                   {"library_name", p.library_name},
                   {"library_version", p.library_version},
                   {"capabilities", p.capabilities}};
  if (p.kind == Kind::gate) {
    nlohmann::json flags = nlohmann::json::array();
    if (p.flags & CP_FLAG_GATE_POLICY) flags.push_back("policy");
    if (p.flags & CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER) flags.push_back("needs_completed_runner");
    j["flags"] = flags;
  }
  if (with_schema) {
    j["config_schema"] = nlohmann::json::parse(p.config_schema, nullptr, false);
    j["config"] = nlohmann::json::parse(p.config_json, nullptr, false);
    j["library_path"] = p.library_path.string();
  }
  return j;
}

}  // namespace cp::plugin
