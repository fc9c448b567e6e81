// cp-host's one clock: wall time in milliseconds and its ISO-8601 UTC text ("2026-11-25T10:00:00.123Z"),
// the form every timestamp in bundles, events, the queue and the API takes.
#pragma once

#include <cstdint>
#include <string>

namespace cp::core {

int64_t now_ms();           // milliseconds since the Unix epoch
std::string now_utc_iso();  // now, as ISO-8601 UTC with milliseconds
std::string iso_from_ms(int64_t ms);
// The milliseconds an ISO-8601 UTC text names ("...Z", fractional seconds optional); -1 when it is not one.
int64_t parse_iso_ms(const std::string& iso);

}  // namespace cp::core
