// Finding the processes a run left behind. Every process spawned for a run carries CP_RUN_ID=<run_id> in
// its environment, and its children inherit it; the marker survives the death of cp-host, so recovery can
// stop a crashed run's processes without trusting process ids that may have been reused. A process that
// was started with a cleared environment drops the marker: the run's cgroup (os/run_cgroup.hpp) is what
// holds those.
#pragma once

#include <string>
#include <vector>

namespace cp::os {

// SIGKILLs every process of this user whose initial environment holds CP_RUN_ID=<run_id>. Returns how
// many were signalled. Never throws.
int kill_run_processes(const std::string& run_id);

// The live processes (zombies and dying ones left out) whose initial environment holds
// CP_RUN_ID=<run_id>, this process excepted. Never throws.
std::vector<int> run_processes(const std::string& run_id);

}  // namespace cp::os
