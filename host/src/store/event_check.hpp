// Checks an event before it enters a run's log: type in UPPER_SNAKE_CASE, payload an object, and for the
// event types cp-host defines, the payload schema in schemas/event.schema.json. Plugins' events pass through
// here, so a plugin cannot write a malformed or misleading known event.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>

namespace cp::store {

class Bundle;

// Empty when the event may be logged, else why not.
std::string check_event(const std::string& type, const nlohmann::json& payload);

// True for the lifecycle event types only cp-host itself logs (a plugin's emit of one is refused).
bool host_owned_event(const std::string& type);

// An emit_event sink for plugin calls: parses, checks and appends to the bundle's log; false refuses.
std::function<bool(const std::string&, const std::string&)> plugin_event_sink(Bundle& bundle);

}  // namespace cp::store
