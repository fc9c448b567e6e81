// The worktrees under the runtime root (core::worktrees_dir): a run's worktree stays after its seal when the
// run asked for it (--keep-worktree, rollback.strategy "none"), while it awaits an approval, or when its
// removal failed. What `cp-host worktrees list` and GET /api/worktrees show: each one's run, age and size,
// and what became of the run (its status and verdict, whether its change was promoted).
//
// A worktree holds what a run wrote, so it is measured as hostile input: the walk opens every folder
// beneath the one before it without following a link (a link is counted as itself), and stops at a number
// of entries, when the size is a lower bound (`complete` false: "at least").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cp::control {

struct WorktreeSize {
  uint64_t bytes = 0;    // on disk, or a regular file's apparent size when larger (as the disk budget counts)
  uint64_t entries = 0;  // files, folders and links seen
  bool complete = true;  // false: the walk stopped at a limit; bytes and entries are lower bounds
};

struct KeptWorktree {
  std::string name;  // the folder's name: the run id
  std::filesystem::path path;
  int64_t modified_ms = 0;  // the folder's mtime
  WorktreeSize size;
  std::string problem;  // set when the entry is not a folder that can be measured (a link, a file)
  bool run_exists = false;
  nlohmann::json run;  // the run's listing fields (status, verdict, task_id, created_at, ...) when it exists
  bool promoted = false;
  nlohmann::json evidence;  // the run's evidence decision (promoted or rejected), null when none
};

struct WorktreeListLimits {
  uint64_t max_entries_per_worktree = 200000;
  uint64_t max_entries_total = 1000000;  // over the whole listing; later worktrees are then not measured
  size_t max_worktrees = 10000;
  int max_depth = 64;
};

struct WorktreeListing {
  std::vector<KeptWorktree> worktrees;  // by name
  bool truncated = false;               // more than max_worktrees
};

WorktreeListing list_kept_worktrees(const std::filesystem::path& root, const WorktreeListLimits& limits = {});

// The JSON both the CLI (--json) and the API give for one worktree; `now_ms` is when age is counted to.
nlohmann::json to_json(const KeptWorktree& w, int64_t now_ms);

}  // namespace cp::control
