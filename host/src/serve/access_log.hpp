// The `access` log lane: one JSON line per API request under <root>/.runtime-cache/logs/access/, in the
// log envelope (schemas/log_event.v2.schema.json), rotated and compressed like every lane. The token id is
// logged, never the token.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>

namespace cp::serve {

struct AccessRecord {
  std::string request_id, method, path, token_id, peer;
  int status = 0;
  double latency_ms = 0;
  bool raw = false;  // evidence served unredacted (an admin's raw=1): who read secrets stays on record
};

class AccessLog {
 public:
  explicit AccessLog(
      const std::filesystem::path& root);  // opens the log lanes of root; throws when it cannot
  ~AccessLog();
  void write(const AccessRecord& r);  // thread-safe; never throws (a full disk must not fail requests)
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace cp::serve
