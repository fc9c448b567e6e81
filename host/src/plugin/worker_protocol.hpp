// The framed protocol between cp-host and cp-plugin-worker, over a socketpair (never stdout/stderr,
// which the host keeps as the worker's log). A frame is a 4-byte big-endian length followed by that many
// bytes of one JSON object. Version 1 messages:
//   host -> worker  {"op":"hello","protocols":[1]}          worker ->
//   {"op":"hello","protocol":1,"plugins":[ids]}
//                   {"op":"create","id":ID,"config":JSON-text}        ->
//                   {"op":"created","status":S,"error":E}
//                   {"op":"evaluate","input":TEXT,"workspace":P,"bundle_dir":P,"run_id":R}
//                   {"op":"probe"}
//                   {"op":"propose","input":TEXT}  (a planner's plan, ABI 1.4) -> zero or more
//                   {"op":"event","type":T,"payload":TEXT}
//                                                                         or
//                                                                         {"op":"log","level":L,"message":M},
//                                                                         then
//                                                                         {"op":"result","status":S,"output":O,"error":E}
//                   runners: {"op":"start","input":TEXT,"workspace":P,"bundle_dir":P,"state_dir":P,
//                             "shared_state_dir":P,
//                             "run_id":R} -> result,
//                   {"op":"wait","timeout_ms":N} -> events, then result (status 1 = still running),
//                   {"op":"cancel","force":B} -> result
//                   {"op":"destroy"}                                   -> {"op":"destroyed"}
// Anything else — a frame over the size limit, bytes that are not a JSON object, an unknown op — is a
// protocol violation: the reader refuses it and the peer is treated as broken.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace cp::plugin::wire {

inline constexpr int kProtocol = 1;
inline constexpr uint32_t kMaxFrame = 32u << 20;  // above a plugin's 16 MiB output limit, plus framing

enum class ReadStatus { ok, eof, timeout, too_large, malformed, io_error };
std::string_view describe(ReadStatus s);

// Writes one frame; false on I/O failure (a dead peer). Never raises SIGPIPE.
bool write_frame(int fd, const nlohmann::json& message);

// Decodes one frame body; ReadStatus::malformed unless it is a JSON object with a string "op".
ReadStatus decode(std::string_view body, nlohmann::json& out);

// Reads one frame, waiting at most until `deadline` (steady clock) for it to arrive in full.
ReadStatus read_frame(int fd, nlohmann::json& out, std::chrono::steady_clock::time_point deadline);

}  // namespace cp::plugin::wire
