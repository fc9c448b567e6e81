#include "run/leftover_processes.hpp"

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace cp::run {

namespace fs = std::filesystem;

int kill_run_processes(const std::string& run_id) {
  if (run_id.empty()) return 0;
  const std::string marker = "CP_RUN_ID=" + run_id;
  int killed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    std::ifstream in(e.path() / "environ", std::ios::binary);
    if (!in) continue;
    std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t pos = 0;
    while (pos < env.size()) {
      size_t end = env.find('\0', pos);
      if (end == std::string::npos) end = env.size();
      if (env.compare(pos, end - pos, marker) == 0) {
        if (::kill(pid, SIGKILL) == 0) ++killed;
        break;
      }
      pos = end + 1;
    }
  }
  return killed;
}

}  // namespace cp::run
