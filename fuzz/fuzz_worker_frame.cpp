// The worker protocol's frame reader, fed through a real socketpair: a 4-byte big-endian length and a body
// that must be one JSON object with a string "op". Invariants: every outcome is one of the ReadStatus values,
// an accepted message is an object with a string op, and a declared length over the limit is refused
// before anything is allocated for it.
#include "plugin/worker_protocol.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>

using cp::plugin::wire::ReadStatus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The body alone, as the decoder sees it.
  nlohmann::json msg;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  if (cp::plugin::wire::decode(body, msg) == ReadStatus::ok && (!msg.is_object() || !msg["op"].is_string()))
    std::abort();

  // The whole stream, as read_frame sees it: the bytes, then the peer hangs up.
  if (size > 60000) return 0;  // stays within the socket buffer, so the write never blocks
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(sv[1], data + off, size - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::shutdown(sv[1], SHUT_WR);
  for (int i = 0; i < 64; ++i) {
    nlohmann::json m;
    ReadStatus st = cp::plugin::wire::read_frame(sv[0], m, std::chrono::steady_clock::now());
    if (st == ReadStatus::ok) {
      if (!m.is_object() || !m["op"].is_string()) std::abort();
      continue;
    }
    break;  // eof, too_large, malformed, timeout: the reader stops, as the host does
  }
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}
