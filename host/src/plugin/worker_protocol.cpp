#include "plugin/worker_protocol.hpp"
#include "core/json_depth.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace cp::plugin::wire {

using nlohmann::json;

std::string_view describe(ReadStatus s) {
  switch (s) {
    case ReadStatus::ok:
      return "ok";
    case ReadStatus::eof:
      return "the worker closed the connection";
    case ReadStatus::timeout:
      return "no answer before the deadline";
    case ReadStatus::too_large:
      return "frame larger than the protocol limit";
    case ReadStatus::malformed:
      return "frame is not a JSON object with an op";
    case ReadStatus::io_error:
      return "I/O error on the worker socket";
  }
  return "?";
}

bool write_frame(int fd, const json& message) {
  // Texts a plugin wrote (an event's payload, an error) may hold invalid UTF-8, which dump() refuses with an
  // exception: such bytes cross as U+FFFD instead of ending the worker.
  std::string body = message.dump(-1, ' ', false, json::error_handler_t::replace);
  if (body.size() > kMaxFrame) return false;
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string frame(4, '\0');
  frame[0] = static_cast<char>(n >> 24);
  frame[1] = static_cast<char>(n >> 16);
  frame[2] = static_cast<char>(n >> 8);
  frame[3] = static_cast<char>(n);
  frame += body;
  const char* p = frame.data();
  size_t left = frame.size();
  while (left > 0) {
    ssize_t w = ::send(fd, p, left, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return true;
}

ReadStatus decode(std::string_view body, json& out) {
  if (!core::json_depth_ok(body)) return ReadStatus::malformed;
  out = json::parse(body, nullptr, false);
  if (out.is_discarded() || !out.is_object() || !out.contains("op") || !out["op"].is_string())
    return ReadStatus::malformed;
  return ReadStatus::ok;
}

namespace {
// Reads exactly n bytes before the deadline.
ReadStatus read_exact(int fd, char* buf, size_t n, std::chrono::steady_clock::time_point deadline,
                      bool first) {
  size_t got = 0;
  while (got < n) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return ReadStatus::timeout;
    pollfd pfd{fd, POLLIN, 0};
    int pr = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (pr < 0) {
      if (errno == EINTR) continue;
      return ReadStatus::io_error;
    }
    if (pr == 0) continue;
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ReadStatus::io_error;
    }
    if (r == 0) return first && got == 0 ? ReadStatus::eof : ReadStatus::malformed;  // cut mid-frame
    got += static_cast<size_t>(r);
  }
  return ReadStatus::ok;
}
}  // namespace

ReadStatus read_frame(int fd, json& out, std::chrono::steady_clock::time_point deadline) {
  unsigned char head[4];
  ReadStatus s = read_exact(fd, reinterpret_cast<char*>(head), 4, deadline, true);
  if (s != ReadStatus::ok) return s;
  uint32_t n =
      (uint32_t(head[0]) << 24) | (uint32_t(head[1]) << 16) | (uint32_t(head[2]) << 8) | uint32_t(head[3]);
  if (n > kMaxFrame) return ReadStatus::too_large;
  std::string body(n, '\0');
  s = read_exact(fd, body.data(), n, deadline, false);
  if (s != ReadStatus::ok) return s;
  return decode(body, out);
}

}  // namespace cp::plugin::wire
