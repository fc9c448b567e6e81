// Starting a child between fork and exec without the allocator. A host with many threads can fork while
// another thread holds a lock of malloc (or of a sanitizer's bookkeeping); a child that then allocates
// waits on that lock forever. So everything the child needs is built before fork, and the child makes
// system calls only.
#pragma once

#include <sys/types.h>

#include <string>

namespace cp::os {

class PreparedSandbox;

// What the child does, in this order: the three standard descriptors, the working directory, a session
// of its own, death with its parent, the run's cgroup, the sandbox, close-on-exec for everything else,
// default signal handling, exec. Every pointer must stay valid until launch_child returns.
struct ChildPlan {
  const char* exe = nullptr;          // the resolved program
  const char* const* argv = nullptr;  // null-terminated
  const char* const* envp = nullptr;  // null-terminated; null = the host's environment
  const char* cwd = nullptr;          // null = the host's working directory
  int stdio[3] = {-1, -1, -1};        // descriptors the child gets as 0, 1 and 2
  const PreparedSandbox* sandbox = nullptr;
  int cgroup_procs_fd = -1;  // an open cgroup.procs the child writes itself into (-1: none)
};

// The child's pid once it has exec'd the program. -1 when it did not: `error` then says which step
// failed and why ("chdir: No such file or directory"), and the child is already reaped.
pid_t launch_child(const ChildPlan& plan, std::string& error);

}  // namespace cp::os
