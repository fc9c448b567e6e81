// Crash recovery of run bundles. A bundle whose manifest is not sealed and whose lock no live process
// holds was left by a cp-host that died mid-run: its torn last event line is truncated, the diff of its
// worktree is kept when it can be, and it is sealed as verdict "error", reason "host_interrupted", with an
// incident pack. Nothing is silently dropped: the truncated byte count is in the RUN_SEALED event.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cp::run {

struct Recovered {
  std::string run_id;
  std::string verdict;
  std::string reason;
  unsigned long long truncated_bytes = 0;
};

// Seals every crashed bundle under <root>/.runtime-cache/cortexpilot/runs. By default only bundles marked
// live (runs/.live/) are looked at; full_scan reads every manifest (for bundles from before markers, or a
// marker lost with a damaged disk). Never throws: a bundle that cannot be recovered is logged and left for
// the next attempt.
std::vector<Recovered> recover_unsealed(const std::filesystem::path& root, bool full_scan = false);

}  // namespace cp::run
