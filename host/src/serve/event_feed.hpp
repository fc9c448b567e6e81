// Every run's events as one feed, newest first (GET /api/events) or after a point in ascending order (the
// resume of GET /api/events/stream). Events are ordered by (time, run id, seq). A page never reads every
// bundle: the catalogue orders runs by their last event (RunCatalog::spans_by_last_event), and a run's
// events are read only once the page reaches back to its last event — a k-way merge over the runs that
// overlap the page. Sealed runs' events are cached (raw lines, bounded by bytes); the host's own events
// (store/host_events.hpp) take part as the run "host".
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace cp::serve {

class RunCatalog;
struct RunSpan;

// The time of the last event in an events log, read from the file's tail (lines are written with their
// keys sorted, so a line ends with ..."ts":"<time>","type":"<name>"}); -1 when there is none.
long long last_event_ms(const std::filesystem::path& events_file);

struct FeedKey {
  long long ts_ms = 0;
  std::string run_id;
  unsigned long long seq = 0;
  // Newest first: a key is "before" another when it is later.
  bool newer_than(const FeedKey& o) const {
    if (ts_ms != o.ts_ms) return ts_ms > o.ts_ms;
    if (run_id != o.run_id) return run_id > o.run_id;
    return seq > o.seq;
  }
};

// Opaque, URL-safe text for a key (cursors and SSE ids); nullopt when `s` is not one.
std::string encode_feed_key(const FeedKey& k);
std::optional<FeedKey> decode_feed_key(const std::string& s);

struct FeedFilter {
  std::string type, run_id, workflow_id;  // empty: any
  bool matches_run(const RunSpan& s) const;
};

struct FeedPage {
  std::vector<nlohmann::json> events;
  std::optional<FeedKey> next;  // the cursor of the next page; none on the last
  size_t runs_read = 0;         // bundles whose events were read (not from the cache)
};

class EventFeed {
 public:
  // `max_runs_per_page`: bundles a page reads (not from its cache) before it returns what it has, with a
  // cursor to go on from.
  EventFeed(std::filesystem::path root, const RunCatalog& catalog, size_t max_runs_per_page = 2000)
      : root_(std::move(root)), catalog_(catalog), max_runs_(max_runs_per_page) {}

  // Up to `limit` events older than `before` (none: from the newest), newest first.
  FeedPage newest_first(const FeedFilter& f, size_t limit, const std::optional<FeedKey>& before);
  // Events newer than `after` in runs that are not live, oldest first, at most `max` (the rest of a
  // stream's resume; live runs are followed by the stream itself). `more` set when there were more.
  std::vector<std::pair<FeedKey, nlohmann::json>> after(const FeedFilter& f, const FeedKey& after, size_t max,
                                                        bool& more);

 private:
  struct Line {
    FeedKey key;
    std::string type;
    std::string text;
  };
  struct Cached {
    uint64_t size = 0;
    std::vector<Line> lines;  // in file order
    size_t bytes = 0;
  };
  // The events of one run (or of the host) as their lines, from the cache when the file has not changed.
  std::shared_ptr<const Cached> lines_of(const std::string& run_id, const std::filesystem::path& file,
                                         bool& read);
  RunSpan host_span() const;

  std::filesystem::path root_;
  const RunCatalog& catalog_;
  size_t max_runs_;
  std::mutex mu_;
  struct Slot {
    std::shared_ptr<const Cached> lines;
    std::list<std::string>::iterator use;  // its place in lru_
  };
  std::unordered_map<std::string, Slot> cache_;
  std::list<std::string> lru_;  // oldest use first; moved in O(1) through Slot::use
  size_t cached_bytes_ = 0;
  static constexpr size_t kCacheBytes = 64u << 20;
};

}  // namespace cp::serve
