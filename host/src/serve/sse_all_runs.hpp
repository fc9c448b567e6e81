// The stream of every run's events (GET /api/events/stream): which runs a stream follows and how far it
// has read each. Runs are picked from the catalogue's newest-by-last-event list (live runs always head it),
// so a new run is followed within a refresh of the catalogue and read from its first event; the host's own
// events are followed as the run "host".
#pragma once

#include "serve/event_feed.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>

namespace cp::serve {

class RunCatalog;

struct AllRunsWatch {
  const RunCatalog* catalog = nullptr;
  std::filesystem::path root;
  FeedFilter filter;
  FeedKey from;  // only events newer than this are sent (the resume point, or the stream's start)
  struct Followed {
    std::filesystem::path file;
    uint64_t offset = 0;
    bool live = false;
  };
  std::map<std::string, Followed> runs;
  std::unordered_map<std::string, unsigned long long> sent;  // the last seq sent of each run
  std::chrono::steady_clock::time_point last_scan{};
};

// Appends the SSE frames of events written since the last call (id: the event's feed key, so
// Last-Event-ID resumes the stream) to `out`, up to about `budget` bytes; events of one pass are sent in
// feed order. `redact` replaces secrets in their strings.
void read_all_runs(AllRunsWatch& w, bool redact, std::string& out, size_t budget);

}  // namespace cp::serve
