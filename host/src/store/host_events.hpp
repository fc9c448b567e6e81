// Events that belong to no run: an admin force-releasing a path lock, a role config applied. They go to one
// hash-chained log beside the run bundles (core::host_events_log), in the same line format as a run's
// events.jsonl with run_id "host", so the cross-run event views and `runs verify`-style checks read both
// the same way.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace cp::store {

// The run_id host events carry (a valid run id no run can have: run ids are made by the host and never
// take this name).
inline constexpr const char* kHostEventsRunId = "host";

// Appends one event and returns it as written. Safe across processes (an flock beside the log serialises
// `cp-host serve` and the CLI) and threads. Throws std::runtime_error when the log cannot be written or no
// longer verifies: an audit trail that cannot be kept is an error, never skipped.
nlohmann::json record_host_event(const std::filesystem::path& root, const std::string& type,
                                 nlohmann::json payload);

}  // namespace cp::store
