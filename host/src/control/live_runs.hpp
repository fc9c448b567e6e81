// What the agents of the live runs are doing: each run not sealed yet (its runs/.live marker), with its
// assigned role and agent, runner, stage (from its last events), worktree and the files its agent reported
// changing (FILE_CHANGED events). Events are read incrementally: each run's events.jsonl is read on from
// where the previous snapshot stopped, at most a bounded number of bytes per run and per snapshot, so a
// dashboard polling this costs the new events only. `cp-host agents status` takes one snapshot;
// `cp-host serve` keeps one LiveRuns per root across requests.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>

namespace cp::control {

class LiveRuns {
 public:
  // Bounds: events read per run per snapshot, events read per snapshot in all, distinct changed paths kept
  // per run (a run reporting more is counted as "more than"), paths listed per run in an answer.
  struct Limits {
    uint64_t bytes_per_run = 4u << 20;
    uint64_t bytes_per_snapshot = 32u << 20;
    size_t paths_kept = 2000;
    size_t paths_listed = 200;
  };

  explicit LiveRuns(std::filesystem::path root) : root_(std::move(root)) {}
  LiveRuns(std::filesystem::path root, Limits limits) : root_(std::move(root)), limits_(limits) {}

  // {"runs": [...], "count"}: oldest live run first. Thread-safe.
  nlohmann::json snapshot();

  // The stage a run is in after an event of `type` (probe, workspace, runner, collect, gates, sealing).
  static std::string stage_after(const std::string& type, const std::string& current);

 private:
  struct Progress {
    uint64_t offset = 0;    // bytes of events.jsonl consumed (whole lines)
    uint64_t inode = 0;     // the file read; another file (a recovery rewrote it) starts over
    bool skipping = false;  // inside a line longer than bytes_per_run: dropped to its end
    long long last_seq = 0;
    std::string last_type, last_ts, stage = "starting";
    std::set<std::string> paths;  // distinct FILE_CHANGED paths, at most paths_kept
    bool paths_truncated = false;
    long long file_events = 0;
    bool caught_up = true;  // the last read reached the end of the file
  };
  void read_events(const std::filesystem::path& file, Progress& p, uint64_t& budget);
  void take(const std::string& line, Progress& p);

  std::filesystem::path root_;
  Limits limits_;
  std::mutex mu_;
  std::map<std::string, Progress> runs_;  // run id -> what was read of it
};

}  // namespace cp::control
