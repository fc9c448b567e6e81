// Server-sent event streams of run events (GET /api/runs/{id}/events/stream): one thread polls each
// stream's events.jsonl — the file is the truth, written by whichever process runs the run — and writes new
// events to the stream's own socket. Kept apart from the HTTP adapter: no Pistache type crosses here.
#pragma once

#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace cp::serve {

struct AllRunsWatch;

// One open event stream: the events of a bundle after `last_seq`, as they are appended. The stream owns a
// dup() of the connection's socket and writes to it itself: Pistache's own stream writer is not safe to use
// from a thread other than its reactor's, and a socket of our own cannot be reused under us.
struct SseClient {
  int fd = -1;
  const void* peer = nullptr;  // identity only: which connection this is, for drop()
  std::filesystem::path bundle;
  unsigned long long last_seq = 0;
  bool redact = true;   // events go out with the secrets in their strings replaced (not for an admin's raw=1)
  uint64_t offset = 0;  // bytes of events.jsonl consumed (whole lines)
  std::string pending;  // written to the socket as it drains
  bool finishing = false;
  std::shared_ptr<AllRunsWatch> all;  // set: the stream of every run's events (bundle unused)
  std::function<bool()> live;         // set: asked about once a second; false ends the stream
  std::chrono::steady_clock::time_point live_checked = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
  ~SseClient() {
    if (fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);  // the peer sees the end even while Pistache still holds its own fd
      ::close(fd);
    }
  }
};

// The SSE `event:` name of an event: its type when that is a plain name, else "event".
std::string sse_event_name(const nlohmann::json& e);

// One SSE frame of an event: "id: <id>", "event: <type>", "data: <the line>". The line goes as written
// (clients may check its hash) unless it holds a CR, which JSON allows between tokens and SSE reads as a
// line end, or (with `redact`) a secret; then `e` goes re-serialised with the secret redacted.
std::string sse_frame(const std::string& id, std::string_view line, nlohmann::json& e, bool redact);

// Polls each stream's events.jsonl (the file is the truth, written by whichever process runs the run) and
// writes new events as SSE frames: "id: <seq>", "event: <type>", "data: <event JSON>". Ends the stream
// with an `end` event once the run is sealed and every event has been sent.
class SseHub {
 public:
  explicit SseHub(size_t max) : max_(max) {}
  ~SseHub() { stop(); }

  bool add(std::unique_ptr<SseClient> c) {
    std::lock_guard<std::mutex> l(mu_);
    if (clients_.size() >= max_) return false;
    clients_.push_back(std::shared_ptr<SseClient>(std::move(c)));
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    cv_.notify_all();
    return true;
  }
  // The connection closed: forget its stream.
  void drop(const void* peer) {
    std::lock_guard<std::mutex> l(mu_);
    clients_.remove_if([peer](const std::shared_ptr<SseClient>& c) { return c->peer == peer; });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> l(mu_);
    clients_.clear();
  }

 private:
  // Per stream, at most this much formatted output waits for the socket; more of the log is read only
  // once it has drained. A stream's memory is bounded by this plus one read, whatever the log's size.
  static constexpr size_t kHighWater = 256u << 10;
  static constexpr size_t kReadChunk = 256u << 10;
  // A reader that takes none of its pending bytes for this long is dropped: it holds a stream slot and
  // its buffer and is not reading.
  static constexpr std::chrono::seconds kStalled{30};

  // Returns false when the client is done (run over and all sent, the peer went away, or it stalled).
  static bool pump(SseClient& c);
  // Streams are pumped with no lock held: a slow file read or a full socket on one stream must not hold
  // up add() and drop(), which the HTTP threads call (and with them every other request).
  void loop();

  size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::shared_ptr<SseClient>> clients_;
  std::thread thread_;
  bool stop_ = false;
};

}  // namespace cp::serve
