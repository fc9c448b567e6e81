// Whether the calling process belongs to a run's process tree. A run's own processes never take a
// decision about a run (approve, reject, god-mode approve, promote or discard evidence): the decision is
// what governs them. The sandbox already hides the runtime root from a run; this check refuses even where
// the sandbox could not (a kernel without Landlock, a pack that runs unsandboxed), and says why.
#pragma once

#include "control/actor.hpp"

#include <string>

namespace cp::control {

// Why this process is part of a run, or empty when nothing says so. It is, when:
//  - CP_RUN_ID is set in its environment (every process a run starts carries it, children inherit it);
//  - it sits in a run's cgroup (`.../cp-runs/<run id>`), which a run's process cannot leave;
//  - an ancestor (parent, grandparent, ... pid 1 included) carries CP_RUN_ID in its initial environment or
//    sits in a run's cgroup, so that starting cp-host with a cleared environment (`env -i`) does not help.
std::string run_origin();

// The message that refuses `actor`'s decision when this process is part of a run; empty when the decision
// may go on. Only people are asked (OS users, token holders): cp-host's own rules (the approval deadline, a
// chain carrying its steps forward) are not decisions a run could forge through them.
std::string refusal_from_run(const Actor& actor);

}  // namespace cp::control
