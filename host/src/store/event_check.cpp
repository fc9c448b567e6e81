#include "store/event_check.hpp"
#include "contract/json_depth.hpp"

#include "contract/schema_catalog.hpp"
#include "log/logger.hpp"
#include "store/bundle.hpp"

#include <nlohmann/json.hpp>

namespace cp::store {

using nlohmann::json;

std::string check_event(const std::string& type, const json& payload) {
  // Validated as a whole event so the schema's per-type payload rules apply; the chain fields are
  // placeholders the log fills in.
  json doc{{"seq", 1},           {"ts", "2000-01-01T00:00:00Z"}, {"run_id", "check"},  {"type", type},
           {"payload", payload}, {"prev_hash", zero_hash()},     {"hash", zero_hash()}};
  auto v = contract::schema("event").validate(doc);
  if (v.empty()) return {};
  return "event " + type + " breaks schemas/event.schema.json at " +
         (v[0].pointer.empty() ? "/" : v[0].pointer) + " (" + v[0].rule + "): " + v[0].message;
}

std::function<bool(const std::string&, const std::string&)> plugin_event_sink(Bundle& bundle) {
  return [&bundle](const std::string& type, const std::string& payload_json) {
    // An event is a fact, not a data dump: bulky output belongs in artifacts/, not in the hash chain.
    constexpr size_t kMaxPayload = 1u << 20;
    if (payload_json.size() > kMaxPayload) {
      cp::log::warn("refused event " + type + ": payload of " + std::to_string(payload_json.size()) +
                    " bytes exceeds 1 MiB");
      return false;
    }
    json payload = contract::json_depth_ok(payload_json) ? json::parse(payload_json, nullptr, false)
                                                         : json(json::value_t::discarded);
    if (payload.is_discarded()) {
      cp::log::warn("refused event " + type + ": payload is not JSON");
      return false;
    }
    std::string why = check_event(type, payload);
    if (!why.empty()) {
      cp::log::warn("refused plugin event: " + why);
      return false;
    }
    try {
      bundle.events().append(type, std::move(payload));
      return true;
    } catch (const std::exception& e) {
      cp::log::error(std::string("cannot append event: ") + e.what());
      return false;
    }
  };
}

}  // namespace cp::store
