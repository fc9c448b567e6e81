// Probes: every probe plugin's capability answer, with when it was probed and until when it holds, and every
// plugin the registry refused, with the reason (GET /api/probes). A probe runs when its kept answer has run
// out (plugin/probe_cache.hpp), as `cp-host probe` runs it.
#include "core/clock.hpp"
#include "plugin/probe_cache.hpp"
#include "plugin/registry.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

#include <nlohmann/json.hpp>

namespace cp::serve {

using nlohmann::json;

namespace {

// The answers this serve keeps. Process-wide: serve has one registry for its life, and the cache keys its
// answers by library and plugin id.
plugin::ProbeCache& probe_cache() {
  static plugin::ProbeCache cache;
  return cache;
}

ApiResponse probes(const ApiServices& s, const RouteCall&) {
  if (!s.registry)
    return error(503, "no_plugins",
                 "this serve has no plugin registry, so there is no probe to run; start it "
                 "with --plugins DIR");
  json list = json::array();
  for (const auto& p : s.registry->plugins()) {
    if (p.kind != plugin::Kind::probe) continue;
    auto a = probe_cache().get(p);
    json entry = plugin::to_json(p, false);
    entry["declared_capabilities"] = entry["capabilities"];
    entry["status"] = a.result.value("status", "error");
    entry["capabilities"] = a.result.value("capabilities", json::object());
    entry["ttl_seconds"] = a.result.value("ttl_seconds", 0);
    entry["message"] =
        a.result.contains("message") && a.result["message"].is_string() ? a.result["message"] : json(nullptr);
    entry["probed_at"] = core::iso_from_ms(a.probed_at_ms);
    entry["expires_at"] = core::iso_from_ms(a.expires_at_ms);
    entry["cached"] = a.cached;
    list.push_back(std::move(entry));
  }
  return ok_view(
      {{"probes", list}, {"count", list.size()}, {"refusals", plugin::refusals_json(*s.registry)}});
}

}  // namespace

std::vector<Route> probes_routes() {
  return {
      {{"GET", "/api/probes", Role::viewer}, probes},
  };
}

}  // namespace cp::serve
