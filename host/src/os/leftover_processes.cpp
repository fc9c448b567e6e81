#include "os/leftover_processes.hpp"

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace cp::os {

namespace fs = std::filesystem;

namespace {

// Calls fn(pid) for every process other than this one whose initial environment holds `marker`.
template <class Fn>
void for_each_marked(const std::string& marker, bool live_only, Fn fn) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    if (live_only) {
      // "pid (comm) S ...": a zombie (Z) or a dead task (X) is no longer running anything.
      std::ifstream st(e.path() / "stat");
      std::string stat;
      std::getline(st, stat);
      size_t close = stat.rfind(')');
      if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z' ||
          stat[close + 2] == 'X')
        continue;
    }
    std::ifstream in(e.path() / "environ", std::ios::binary);
    if (!in) continue;
    std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t pos = 0;
    while (pos < env.size()) {
      size_t end = env.find('\0', pos);
      if (end == std::string::npos) end = env.size();
      if (env.compare(pos, end - pos, marker) == 0) {
        fn(pid);
        break;
      }
      pos = end + 1;
    }
  }
}

}  // namespace

int kill_run_processes(const std::string& run_id) {
  if (run_id.empty()) return 0;
  int killed = 0;
  for_each_marked("CP_RUN_ID=" + run_id, false, [&](pid_t pid) {
    if (::kill(pid, SIGKILL) == 0) ++killed;
  });
  return killed;
}

std::vector<int> run_processes(const std::string& run_id) {
  std::vector<int> out;
  if (run_id.empty()) return out;
  for_each_marked("CP_RUN_ID=" + run_id, true, [&](pid_t pid) { out.push_back(static_cast<int>(pid)); });
  return out;
}

}  // namespace cp::os
