// The `access` log lane: one JSON line per API request under <root>/.runtime-cache/logs/access/, in the
// log envelope (schemas/log_event.v2.schema.json), rotated and compressed like every lane. The token id is
// logged, never the token.
//
// Requests only hand their record over: a writer thread of its own turns the records into lines and writes
// each batch with one call, so a request never waits for the disk, a lane's rotation or its gzip. The
// hand-over is bounded (kMaxPending records): past it a request waits for the writer rather than a line
// being dropped, since who read what must stay on record.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

namespace cp::serve {

struct AccessRecord {
  std::string request_id, method, path, token_id, peer;
  int status = 0;
  double latency_ms = 0;
  bool raw = false;     // evidence served unredacted (an admin's raw=1): who read secrets stays on record
  long long at_ms = 0;  // when it was handed over (set by write()): the line's ts
};

class AccessLog {
 public:
  explicit AccessLog(
      const std::filesystem::path& root);  // opens the log lanes of root; throws when it cannot
  ~AccessLog();                            // writes every record handed over, then stops the writer
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  void write(AccessRecord r);  // thread-safe; never throws (a full disk must not fail requests)
  void flush();                // returns once every record handed over before the call is written
  const std::filesystem::path& path() const { return path_; }

  static constexpr size_t kMaxPending = 65536;

 private:
  void drain();  // the writer thread
  std::filesystem::path path_;
  std::mutex mu_;
  std::condition_variable wake_, room_;
  std::deque<AccessRecord> pending_;
  unsigned long long handed_ = 0, written_ = 0;  // records handed over, and written, so far
  int flushing_ = 0;                             // flush() calls waiting: the writer then writes at once
  bool stopping_ = false;
  // How long the writer lets records gather before it writes them: a line reaches the file at most this
  // late.
  static constexpr std::chrono::milliseconds kGather{20};
  std::thread writer_;
};

}  // namespace cp::serve
