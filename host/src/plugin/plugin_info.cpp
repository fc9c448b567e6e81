#include "plugin/plugin_info.hpp"

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
  }
  return "unknown";
}

std::optional<Kind> kind_from_name(std::string_view name) {
  for (Kind k : {Kind::runner, Kind::gate, Kind::probe, Kind::retention_lane})
    if (kind_name(k) == name) return k;
  return std::nullopt;
}

}  // namespace cp::plugin
