// How full the capped retention lanes of a runtime root are: each enabled lane of
// policies/retention_policy.json that has a `max_bytes` and lives inside the root, measured against its cap.
// The command tower's "over its retention cap" alert reads this (serve measures it on a slow timer, never per
// request); `retention plan` is what says which entries would go.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cp::retention {

struct LaneUsage {
  std::string lane;
  std::filesystem::path lane_root;
  uint64_t bytes = 0;      // apparent sizes (st_size) of every non-folder entry below the lane's folder
  uint64_t cap_bytes = 0;  // the lane's max_bytes
  uint64_t files = 0;
  std::vector<std::string> errors;  // what could not be measured (the walk goes on past it)
  bool over() const { return bytes > cap_bytes; }
};

// The capped lanes inside `root`, measured now. A lane rooted outside the runtime root (machine_cache) is
// left out: it is not the root's. Throws PolicyError when the policy is missing or invalid.
std::vector<LaneUsage> measure_capped_lanes(const std::filesystem::path& root);

// The bytes below `dir` as LaneUsage counts them. Never follows a symlink (a link counts as itself), takes
// an entry vanishing mid-walk as gone, and stops descending 256 folders deep.
void measure_tree(const std::filesystem::path& dir, LaneUsage& into);

}  // namespace cp::retention
