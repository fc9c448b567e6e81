#include "control/run_origin.hpp"

#include "os/run_cgroup.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace cp::control {

namespace {

// True, with its value in `id`, when /proc/<pid>/environ (the environment the process was started with)
// holds CP_RUN_ID. False when it does not or cannot be read (another user's process).
bool environ_run_id(const std::string& pid, std::string& id) {
  std::ifstream in("/proc/" + pid + "/environ", std::ios::binary);
  if (!in) return false;
  std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  static const std::string key = "CP_RUN_ID=";
  size_t pos = 0;
  while (pos < env.size()) {
    size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    if (env.compare(pos, key.size(), key) == 0) {
      id = env.substr(pos + key.size(), end - pos - key.size());
      return true;
    }
    pos = end + 1;
  }
  return false;
}

// The command name and parent of a process, from /proc/<pid>/stat ("pid (comm) state ppid ..."; the name
// may hold spaces and parentheses, so it ends at the last ')'). False when the process is gone.
bool stat_of(const std::string& pid, std::string& comm, long& ppid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  size_t open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  comm = stat.substr(open + 1, close - open - 1);
  std::istringstream rest(stat.substr(close + 1));
  char state = 0;
  return static_cast<bool>(rest >> state >> ppid);
}

bool in_run_cgroup(const std::string& cgroup) {
  return cgroup.find("/cp-runs/") != std::string::npos;
}

}  // namespace

std::string run_origin() {
  if (const char* id = std::getenv("CP_RUN_ID"))
    return "CP_RUN_ID=" + std::string(id) + " is set in the environment: this process was started by run " +
           (*id ? std::string(id) : std::string("(unnamed)"));
  if (os::inside_run_cgroup()) return "this process sits in the run cgroup " + os::cgroup_of();
  // Up the tree: a run's process that cleared its environment still has the run's processes as ancestors.
  // Bounded, in case pids are reused into a loop while we walk.
  long pid = static_cast<long>(::getppid());
  for (int hops = 0; pid >= 1 && hops < 4096; ++hops) {
    const std::string p = std::to_string(pid);
    std::string comm, id;
    long ppid = 0;
    if (!stat_of(p, comm, ppid)) break;
    if (environ_run_id(p, id))
      return "ancestor process " + p + " (" + comm + ") carries CP_RUN_ID=" + id +
             ": this process was started from inside run " + id;
    if (std::string cg = os::cgroup_of(p); in_run_cgroup(cg))
      return "ancestor process " + p + " (" + comm + ") sits in the run cgroup " + cg;
    if (pid == 1) break;
    pid = ppid;
  }
  return {};
}

std::string refusal_from_run(const Actor& actor) {
  if (actor.by_kind == "system") return {};
  std::string why = run_origin();
  if (why.empty()) return {};
  return "refused: decisions on runs cannot be taken from inside a run (" + why +
         "); decide from a shell no run started, or through cp-host serve's API";
}

}  // namespace cp::control
