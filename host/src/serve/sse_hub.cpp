#include "serve/sse_hub.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "serve/secret_redaction.hpp"
#include "serve/sse_all_runs.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace cp::serve {

using nlohmann::json;

// An SSE field value must not hold CR or LF: either ends the field, and what follows would be read as
// fields of the server's own (an `event: end` saying success, say). Event types are names; anything else
// is sent under the generic name, the real type still inside the data.
std::string sse_event_name(const json& e) {
  auto t = e.find("type");
  if (t == e.end() || !t->is_string()) return "event";
  const std::string& s = t->get_ref<const std::string&>();
  if (s.empty() || s.size() > 128) return "event";
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f) return "event";
  return s;
}

std::string sse_frame(const std::string& id, std::string_view line, json& e, bool redact) {
  bool redacted = redact && redact_json_strings(e).total() > 0;
  std::string data = !redacted && line.find('\r') == std::string_view::npos
                         ? std::string(line)
                         : e.dump(-1, ' ', false, json::error_handler_t::replace);
  return "id: " + id + "\nevent: " + sse_event_name(e) + "\ndata: " + data + "\n\n";
}

bool SseHub::pump(SseClient& c) {
  auto now = std::chrono::steady_clock::now();
  // The session the stream was opened with was ended (logout) or expired: so is the stream.
  if (c.live && now - c.live_checked >= std::chrono::seconds(1)) {
    if (!c.live()) return false;
    c.live_checked = now;
  }
  if (c.all && c.pending.size() < kHighWater) {
    std::string out;
    read_all_runs(*c.all, c.redact, out, kReadChunk);
    if (out.empty() && now - c.last_write > std::chrono::seconds(15) && c.pending.empty())
      out = ": keep-alive\n\n";
    c.pending += out;
  } else if (!c.all && !c.finishing && c.pending.size() < kHighWater) {
    std::string buf;
    bool at_end = true;  // the whole file up to its current end was read
    // Never a link, never blocking: a FIFO planted as events.jsonl must not freeze every stream.
    int fd = ::open((c.bundle / "events.jsonl").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st {};
    if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
      ::close(fd);
      return false;
    }
    if (fd >= 0) {
      char chunk[65536];
      for (;;) {
        ssize_t n = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(c.offset + buf.size()));
        if (n <= 0) break;
        buf.append(chunk, static_cast<size_t>(n));
        if (buf.size() >= kReadChunk) {
          at_end = false;  // the rest comes next tick
          break;
        }
      }
      ::close(fd);
    }
    std::string out;
    size_t pos = 0;
    for (;;) {
      size_t nl = buf.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string_view line(buf.data() + pos, nl - pos);
      c.offset += nl - pos + 1;
      pos = nl + 1;
      if (line.empty() || !core::json_depth_ok(line)) continue;
      json e = json::parse(line, nullptr, false);
      if (!e.is_object()) continue;
      unsigned long long seq = e.value("seq", 0ULL);
      if (seq <= c.last_seq) continue;
      out += sse_frame(std::to_string(seq), line, e, c.redact);
      c.last_seq = seq;
      if (out.size() >= kHighWater) {
        at_end = false;
        break;
      }
    }
    if (out.empty() && at_end) {
      json m = core::read_json_file(c.bundle / "manifest.json");
      std::string st = m.is_object() ? m.value("status", "") : "";
      if (st == "sealed" || st == "awaiting_approval" || st == "fenced") {
        json end{{"status", st}, {"last_seq", c.last_seq}};
        if (m.contains("verdict")) end["verdict"] = m["verdict"];
        // dump() escapes every control character: the frame is one data line.
        out = "event: end\ndata: " + end.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        c.finishing = true;
      } else if (now - c.last_write > std::chrono::seconds(15) && c.pending.empty()) {
        out = ": keep-alive\n\n";  // lets proxies and clients tell a quiet run from a dead connection
      }
    }
    c.pending += out;
  }
  size_t sent = 0;
  while (sent < c.pending.size()) {
    ssize_t n = ::send(c.fd, c.pending.data() + sent, c.pending.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      c.last_write = std::chrono::steady_clock::now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // slow reader
    return false;                                                   // the peer went away
  }
  c.pending.erase(0, sent);
  if (c.pending.capacity() > 2 * kHighWater && c.pending.size() < kHighWater) c.pending.shrink_to_fit();
  if (!c.pending.empty() && now - c.last_write > kStalled) return false;
  return !(c.finishing && c.pending.empty());
}

void SseHub::loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    std::vector<std::shared_ptr<SseClient>> batch(clients_.begin(), clients_.end());
    l.unlock();
    std::vector<const SseClient*> done;
    for (const auto& c : batch) {
      bool keep = false;
      try {
        keep = pump(*c);
      } catch (const std::exception&) {
        keep = false;
      }
      if (!keep) done.push_back(c.get());
    }
    l.lock();
    if (!done.empty())
      clients_.remove_if([&](const std::shared_ptr<SseClient>& c) {
        return std::find(done.begin(), done.end(), c.get()) != done.end();
      });
    // The last references to dropped streams go here, under the lock only as long as a close takes.
    batch.clear();
    cv_.wait_for(l, std::chrono::milliseconds(50), [this] { return stop_; });
  }
}

}  // namespace cp::serve
