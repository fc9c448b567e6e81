// One cgroup v2 per run, so every process the run starts - double-forked, setsid'd or re-exec'd with a
// clean environment - can be found and killed as one: a process cannot leave its cgroup without write
// access to the cgroup tree, which the sandbox never grants.
//
// The cgroup2 hierarchy is found in /proc/self/mountinfo (on hybrid hosts it is not /sys/fs/cgroup itself
// but e.g. /sys/fs/cgroup/unified), and run cgroups are made beneath the host's own cgroup, in
// `cp-runs/<run id>`. No controller is enabled: membership and cgroup.kill are all that is used.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace cp::os {

// The cgroup2 mount point, or empty when there is none.
std::filesystem::path cgroup2_mount();

// The cgroup (relative to the cgroup2 mount, starting with '/') of a process; "self" for the caller.
// Empty when it cannot be read.
std::string cgroup_of(const std::string& pid = "self");

// True when the caller runs inside a run's cgroup (`.../cp-runs/<id>`): a decision command refuses then.
bool inside_run_cgroup();

class RunCgroup {
 public:
  // Makes the run's cgroup. Null, with `why`, when no cgroup2 hierarchy is mounted or it is not writable.
  // CP_SANDBOX_SIMULATE_NO_CGROUP=1 makes it answer null, so tests can check the fallback.
  static std::unique_ptr<RunCgroup> create(const std::string& run_id, std::string& why);
  // An existing run cgroup by its full path (recorded in the manifest), for recovery. Null when gone.
  static std::unique_ptr<RunCgroup> attach(const std::filesystem::path& dir);
  ~RunCgroup();
  RunCgroup(const RunCgroup&) = delete;
  RunCgroup& operator=(const RunCgroup&) = delete;

  const std::filesystem::path& path() const { return dir_; }
  // cgroup.procs opened for writing (close-on-exec): a child writes "0" to it to join before it execs.
  int procs_fd() const { return procs_fd_; }
  std::vector<int> pids() const;
  // SIGKILLs every process in the cgroup (cgroup.kill, or a signal per pid on kernels before 5.14) and
  // waits up to two seconds for it to empty. Returns the pids that were there.
  std::vector<int> kill_all() const;
  // kill_all(), then removes the cgroup. False when processes survived.
  bool destroy();

 private:
  explicit RunCgroup(std::filesystem::path dir);
  std::filesystem::path dir_;
  int procs_fd_ = -1;
};

}  // namespace cp::os
