#include "store/event_check.hpp"
#include "core/json_depth.hpp"

#include "core/schema_catalog.hpp"
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
  auto v = core::schema("event").validate(doc);
  if (v.empty()) return {};
  return "event " + type + " breaks schemas/event.schema.json at " +
         (v[0].pointer.empty() ? "/" : v[0].pointer) + " (" + v[0].rule + "): " + v[0].message;
}

bool host_owned_event(const std::string& type) {
  static const char* kHost[] = {
      "RUN_STARTED",           "PROBE_COMPLETED",      "WORKSPACE_CREATED", "RUNNER_STARTED",
      "RUNNER_FINISHED",       "DIFF_COLLECTED",       "GATE_PASSED",       "GATE_FAILED",
      "GATE_WARNED",           "GATE_ERRORED",         "GATE_SKIPPED",      "RUN_SEALED",
      "RUN_AWAITING_APPROVAL", "RUN_CANCEL_REQUESTED", "APPROVAL_RECORDED", "APPROVAL_DECIDED",
      "EVIDENCE_PROMOTED",     "EVIDENCE_REJECTED",    "REPORT_ADDED",      "SANDBOX_APPLIED",
      "RUN_PROCESSES_KILLED",  "DISK_BUDGET_EXCEEDED", "RUN_ROLLED_BACK",   "PATH_LOCK_RELEASED"};
  for (const char* t : kHost)
    if (type == t) return true;
  return type.rfind("CHAIN_", 0) == 0;
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
    json payload = core::json_depth_ok(payload_json) ? json::parse(payload_json, nullptr, false)
                                                     : json(json::value_t::discarded);
    if (payload.is_discarded()) {
      cp::log::warn("refused event " + type + ": payload is not JSON");
      return false;
    }
    // The host's own lifecycle events say what the host did (started, judged, sealed, decided): a plugin
    // that could log one could write "sealed success" into a denied run's stream.
    if (host_owned_event(type)) {
      cp::log::warn("refused plugin event " + type + ": only cp-host logs this type");
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
