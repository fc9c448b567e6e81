// The runs the API lists: an in-memory index of every bundle's manifest summary (store::read_run_summary,
// the reader `cp-host runs list` uses too), kept in newest-first order so a page is a walk from a cursor, not
// a scan of the disk. Built once at start (one manifest read per bundle), then kept fresh cheaply: the runs
// folder is re-listed only when its mtime moves, and only bundles not yet sealed are re-read. The bundles
// stay the truth; this is a cache of them.
#pragma once

#include "serve/run_rows.hpp"
#include "serve/run_stats.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace cp::serve {

// What a listing keeps: the same query `cp-host runs list` asks (store::matches).
using RunFilter = store::RunQuery;

// When a run's events happened, for the cross-run event views: a run's events lie between its creation and
// its last event. A live run may add events at any moment: its last_ms is the largest value.
struct RunSpan {
  std::string run_id, workflow_id;
  std::filesystem::path dir;
  long long first_ms = 0, last_ms = 0;
  bool live = false;
};

struct RunPage {
  std::vector<nlohmann::json> runs;
  std::string next_cursor;  // empty on the last page
};

// One run's result of one gate: the run's listing fields, the gate's verdict in that run, its bundle.
struct GateResult {
  nlohmann::json run;
  std::string verdict;
  std::filesystem::path dir;
};

struct GateResultPage {
  std::vector<GateResult> results;
  std::string next_cursor;  // empty on the last page
};

class RunCatalog {
 public:
  explicit RunCatalog(std::filesystem::path root);

  // Thread-safe. Cheap when nothing changed on disk.
  void refresh();
  // Re-reads one bundle (the scheduler calls this when a run ends).
  void update(const std::string& run_id);

  // Newest first, ties by run id. `cursor` is the next_cursor of the previous page (opaque to callers);
  // std::nullopt when the cursor cannot be decoded.
  std::optional<RunPage> list(const RunFilter& f, size_t limit, const std::string& cursor) const;

  // Runs ordered by their last event, newest first, after the run `after` names (its last_ms and id; none:
  // from the newest); at most `n`. A page of the cross-run event views walks these.
  std::vector<RunSpan> spans_by_last_event(const std::optional<std::pair<long long, std::string>>& after,
                                           size_t n) const;
  std::optional<RunSpan> span(const std::string& run_id) const;
  // The runs whose manifest lists gate `gate_id`, newest first, paged like list(); `verdict` (empty: any)
  // is the gate's verdict in the run. std::nullopt when the cursor cannot be decoded.
  std::optional<GateResultPage> gate_results(const std::string& gate_id, const std::string& verdict,
                                             size_t limit, const std::string& cursor) const;
  // Every gate id some run's manifest lists.
  std::set<std::string> gate_ids() const;

  size_t size() const;
  // Moves whenever what list() could answer changes (a run added, removed, or its listing fields
  // changed): an answer built at one generation holds for as long as it lasts.
  uint64_t generation() const { return generation_.load(); }
  std::map<std::string, long long> count_by_status() const;  // status or, once sealed, verdict
  // gate id -> verdict -> count, over every run's manifest gates.
  std::map<std::string, std::map<std::string, long long>> gate_outcomes() const;
  // The command tower's aggregate, updated with every summary the catalogue takes in or drops.
  const RunStats& stats() const { return stats_; }

 private:
  using Entry = store::RunSummary;
  // Newest first: created_at descending, then run_id descending.
  struct Key {
    std::string created_at, run_id;
    bool operator<(const Key& o) const {
      return created_at != o.created_at ? created_at > o.created_at : run_id > o.run_id;
    }
  };
  std::optional<Entry> read_entry(const std::string& run_id) const;
  void put(Entry e);  // caller holds the write lock
  void erase(const std::string& run_id);

  std::filesystem::path root_, runs_;
  mutable std::shared_mutex mu_;
  std::map<Key, Entry> by_time_;
  std::unordered_map<std::string, Key> by_id_;
  std::unordered_set<std::string> open_;  // the runs not final yet: what each refresh re-reads
  // The listing's screen over by_time_'s entries. While bulk_ (a refresh taking in many runs, the first
  // build above all) put and erase leave it alone and it is rebuilt once at the end.
  RunRows rows_;
  bool bulk_ = false;
  std::string runs_mtime_;  // the runs folder's mtime, ctime and inode when last listed
  // (last event ms, run id), newest first, and each run's span.
  std::set<std::pair<long long, std::string>, std::greater<>> by_last_event_;
  std::unordered_map<std::string, RunSpan> spans_;
  RunStats stats_;
  std::atomic<uint64_t> generation_{1};
};

}  // namespace cp::serve
