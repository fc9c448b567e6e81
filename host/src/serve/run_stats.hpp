// The command tower's view of the runs: counts by state and verdict, finished runs in a time window,
// duration percentiles, gate results in time order, live runs' last event and approvals by deadline. Kept
// up to date one run at a time as the catalogue (run_catalog.hpp) adds, re-reads or drops a run's summary,
// so a read costs a few tree lookups however many runs the root holds; nothing here reads a bundle.
#pragma once

#include "store/run_index.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cp::serve {

// Finished (sealed) runs whose end falls in a window.
struct FinishedWindow {
  long long finished = 0, succeeded = 0;
};

// Nearest-rank percentiles (the value at rank ceil(p/100 * n) of the sorted durations); -1 with no runs.
struct DurationPercentiles {
  long long runs = 0;
  long long p50 = -1, p95 = -1;
};

struct GateTally {
  std::string gate_id;
  long long fail = 0, error = 0, results = 0;  // results: every verdict of the gate, failing or not
  std::string last_failed_run;
  int64_t last_failure_ms = -1;
  long long failures() const { return fail + error; }
};

struct LiveRun {
  std::string run_id, task_id, status;
  int64_t last_event_ms = -1;  // when its events.jsonl last grew (its creation when there is none yet)
};

struct AwaitingRun {
  std::string run_id, task_id, requested_at, deadline;
  int64_t deadline_ms = -1;
};

// A gate whose latest results are failures (fail or error verdicts), or that failed often within a window.
struct FailingGate {
  std::string gate_id;
  long long in_a_row = 0;       // the current streak of failures, counted up to the threshold asked for
  long long in_window = 0;      // failures within the window, counted up to the threshold asked for
  int64_t since_ms = -1;        // when the streak (else the window) reached its threshold
  std::string last_failed_run;  // the newest failing run
  int64_t last_failure_ms = -1;
};

// What the aggregates read of a final run (sealed, unreadable or fenced: neither live nor waiting), as a
// catalogue filling from its index hands it over without building a summary.
struct FinalRun {
  std::string_view run_id, status, verdict;
  int64_t end_ms = 0;  // finished_at, else created_at, in ms (0 when neither is a time)
  long long duration_ms = -1;
  std::vector<std::pair<std::string_view, std::string_view>> gates;  // gate id, verdict
};

class RunStats {
 public:
  RunStats();
  ~RunStats();
  RunStats(const RunStats&) = delete;
  RunStats& operator=(const RunStats&) = delete;

  // Adds the run, or replaces what an earlier summary of it contributed. Thread-safe.
  void update(const store::RunSummary& s);
  void update(const FinalRun& f);
  void remove(const std::string& run_id);
  // Between these, updates of many runs at once (a catalogue's first fill) append their keys and sort them
  // once at the end, instead of inserting each in place.
  void begin_bulk(size_t expected = 0);  // expected: how many runs will come (room is made for them)
  void end_bulk();

  long long total() const;
  std::map<std::string, long long> by_state() const;    // manifest status
  std::map<std::string, long long> by_verdict() const;  // sealed runs
  FinishedWindow finished_since(int64_t since_ms) const;
  DurationPercentiles durations() const;  // sealed runs with a duration
  // The `n` gates with the most failures, most first (ties by gate id).
  std::vector<GateTally> top_failing_gates(size_t n) const;
  // Gates whose newest `in_a_row` results all failed, or that failed `in_window` times at or after
  // `window_start_ms` (a threshold of 0 turns that test off).
  std::vector<FailingGate> failing_gates(long long in_a_row, long long in_window,
                                         int64_t window_start_ms) const;
  // Runs neither sealed nor awaiting a decision whose last event is older than `before_ms`.
  std::vector<LiveRun> quiet_runs(int64_t before_ms) const;
  long long live_runs() const;
  // Runs awaiting a decision, nearest deadline first; those without a deadline are not listed. `until_ms`:
  // only deadlines at or before it; `limit`: at most that many.
  std::vector<AwaitingRun> awaiting_by_deadline(int64_t until_ms, size_t limit) const;

 private:
  struct Impl;
  mutable std::mutex mu_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cp::serve
