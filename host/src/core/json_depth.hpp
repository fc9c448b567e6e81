// The host's use of the SDK's nesting guard (cortexpilot/json_guard.h): every JSON text from outside —
// user files, plugin outputs, worker frames, agent events — is measured before it is parsed.
#pragma once

#include <cortexpilot/json_guard.h>

#include <cstddef>
#include <string_view>

namespace cp::core {

inline constexpr std::size_t kMaxJsonDepth = CP_JSON_MAX_DEPTH;

inline std::size_t json_depth(std::string_view text, std::size_t limit = kMaxJsonDepth) {
  return cp_json_depth(text.data(), text.size(), limit);
}
inline bool json_depth_ok(std::string_view text) {
  return json_depth(text) <= kMaxJsonDepth;
}

}  // namespace cp::core
