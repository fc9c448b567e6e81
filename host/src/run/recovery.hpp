// Crash recovery of run bundles. A bundle whose manifest is not sealed and whose lock no live process
// holds was left by a cp-host that died mid-run: its processes are killed (its cgroup first, then its
// CP_RUN_ID marker), its torn last event line is truncated, the diff of its worktree is kept when it can
// be, and it is sealed as verdict "error", reason "host_interrupted", with an incident pack. Nothing is
// silently dropped: the truncated byte count is in the RUN_SEALED event, and what could not be done (a
// bundle that cannot be sealed, a process that outlived the kill) is reported.
//
// A full disk never wedges it: the run's private TMPDIR is removed before the seal, and when a write of
// the seal fails the dead run's worktree is removed to make room and the seal tried once more. The same
// pass sweeps what crashes leave around the bundles: half-made bundles in runs/.incoming/, `.live`
// markers of runs that are sealed or never got a bundle, runtime/tmp/<run id> folders of runs that are
// over, and the worktree registrations (locked ones included) of the recovered runs' repositories.
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
  size_t killed_processes = 0;
  // The first seal failed (a full disk): the worktree was removed to make room, and the seal tried again.
  bool worktree_freed = false;
  // "recovered <run>: sealed as <verdict> (<reason>)": how a run or serve reports it found and sealed it.
  std::string line() const { return "recovered " + run_id + ": sealed as " + verdict + " (" + reason + ")"; }
};

// A bundle that could not be sealed; it stays marked live and the next recovery tries again.
struct RecoveryFailure {
  std::string run_id;
  std::string error;
};

// Processes of a run that are still alive after its kill (a process stuck in the kernel, or one this user
// may not signal). The run's `.live` marker stays, so every later recovery kills and reports them again.
struct Survivors {
  std::string run_id;
  std::vector<int> pids;
};

struct RecoveryReport {
  std::vector<Recovered> recovered;
  std::vector<RecoveryFailure> failed;
  std::vector<Survivors> survivors;
  std::vector<std::string> cleaned;  // leftovers removed, as paths relative to the runtime folder
  bool complete() const { return failed.empty() && survivors.empty(); }
};

// Seals every crashed bundle under <root>/.runtime-cache/cortexpilot/runs and sweeps the leftovers. By
// default only bundles marked live (runs/.live/) are looked at; full_scan reads every manifest too (for
// bundles from before markers, or a marker lost with a damaged disk). Never throws.
RecoveryReport recover(const std::filesystem::path& root, bool full_scan = false);

// recover(), for callers that only report what was sealed: failures and survivors are logged as errors.
std::vector<Recovered> recover_unsealed(const std::filesystem::path& root, bool full_scan = false);

}  // namespace cp::run
