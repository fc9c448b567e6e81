// The runs the API lists: every bundle's manifest summary (store::read_run_summary, the reader `cp-host runs
// list` uses too) held compactly (run_table.hpp), kept in newest-first order so a page is a walk from a
// cursor, not a scan of the disk. Kept fresh cheaply: the runs folder is re-listed only when it changed, and
// only bundles not yet final are re-read. With a persistent index (run_index_file.hpp), a start reads that
// one file and the runs added since it was saved, then checks each indexed manifest's stamp in the
// background. The bundles stay the truth; this is a cache of them.
#pragma once

#include "serve/run_stats.hpp"
#include "serve/run_table.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
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

// How the catalogue starts and keeps its persistent index.
struct CatalogIndex {
  std::filesystem::path file;  // empty: no persistent index
  // A changed catalogue is saved at most this often while serve runs (and always on stop).
  std::chrono::seconds save_every{300};
  // Indexed manifests whose stamp each refresh checks after a start from the index.
  size_t checks_per_refresh = 50000;
};

// What a start did, for serve's log and `cp-host reindex`.
struct CatalogStart {
  bool from_index = false;
  std::string index_problem;     // why the index was not used ("" when it was, or none is configured)
  size_t indexed = 0, read = 0;  // runs taken from the index; manifests read
  bool listed = false;           // the runs folder was listed
};

class RunCatalog {
 public:
  explicit RunCatalog(std::filesystem::path root, CatalogIndex index = {});

  // The first fill: from the persistent index when there is a usable one, else from every bundle; then
  // what refresh() does. Call once, before anything else.
  CatalogStart start();
  // Thread-safe. Cheap when nothing changed on disk. Saves the index when due.
  void refresh();
  // Re-reads one bundle (the scheduler calls this when a run ends).
  void update(const std::string& run_id);
  // Writes the persistent index now (serve's stop; `cp-host reindex`). Throws on a failed write.
  void save_index();
  // Indexed runs whose manifest stamp is still to be checked against the bundle (0: all checked).
  size_t unchecked() const;

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
  struct Read {
    store::RunSummary summary;
    uint64_t stamp = 0;  // the manifest's, taken before it was read
    bool live = false;
    long long last_ms = 0;  // a run no longer live: its last event
  };
  std::optional<Read> read_entry(const std::string& run_id) const;
  void put(Read e);  // caller holds the write lock
  void erase(const std::string& run_id);
  void refresh_impl(CatalogStart* out);
  bool later(uint32_t a, uint32_t b) const;  // by last event, newest first, then run id descending
  void order_insert(uint32_t r);
  void order_erase(uint32_t r);
  void sort_orders();
  RunSpan span_of(uint32_t r) const;
  std::string runs_stamp() const;
  void take_in(std::vector<Read> fresh, const std::vector<std::string>& gone);  // under the write lock
  void check_stamps();
  void save_if_due();

  std::filesystem::path root_, runs_;
  CatalogIndex index_;
  mutable std::shared_mutex mu_;
  RunTable table_;
  std::vector<uint32_t> order_;           // row numbers, oldest first (created_at, then run id)
  std::vector<uint32_t> by_last_;         // row numbers, newest last event first (then run id, descending)
  std::unordered_set<std::string> open_;  // the runs not final yet: what each refresh re-reads
  bool bulk_ = false;       // a refresh taking in many runs: the orders are sorted once at its end
  std::string runs_mtime_;  // the runs folder's mtime, ctime and inode when last listed
  RunStats stats_;
  std::atomic<uint64_t> generation_{1};
  // The persistent index: changes since the last save and when that was (under mu_), and how far the
  // stamp check after a start from the index went (rows check_next_ to check_end_ are still to check).
  std::atomic<size_t> changed_{0};
  size_t stale_ = 0;  // indexed runs the stamp check found changed
  std::chrono::steady_clock::time_point saved_at_ = std::chrono::steady_clock::now();
  std::atomic<size_t> check_next_{0}, check_end_{0};
  std::mutex save_mu_;  // one save at a time
};

}  // namespace cp::serve
