#include "os/run_cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace cp::os {

namespace fs = std::filesystem;

namespace {

bool write_file(const fs::path& p, const std::string& text) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

}  // namespace

fs::path cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> <source> <super>"
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, mount;
    head >> id >> parent >> dev >> root >> mount;
    if (root == "/") return mount;
  }
  return {};
}

std::string cgroup_of(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return {};
}

bool inside_run_cgroup() {
  std::string cg = cgroup_of();
  auto at = cg.rfind("/cp-runs/");
  return at != std::string::npos && cg.find('/', at + 9) == std::string::npos;
}

RunCgroup::RunCgroup(fs::path dir) : dir_(std::move(dir)) {
  procs_fd_ = ::open((dir_ / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
}

RunCgroup::~RunCgroup() {
  if (procs_fd_ >= 0) ::close(procs_fd_);
}

std::unique_ptr<RunCgroup> RunCgroup::create(const std::string& run_id, std::string& why) {
  const char* sim = std::getenv("CP_SANDBOX_SIMULATE_NO_CGROUP");
  if (sim && *sim && std::string(sim) != "0") {
    why = "cgroups reported absent (CP_SANDBOX_SIMULATE_NO_CGROUP is set)";
    return nullptr;
  }
  fs::path mount = cgroup2_mount();
  if (mount.empty()) {
    why = "no cgroup2 hierarchy is mounted";
    return nullptr;
  }
  std::string own = cgroup_of();
  // A host that itself runs inside a run cgroup (a nested cp-host) makes its runs beside its own.
  auto nested = own.rfind("/cp-runs/");
  if (nested != std::string::npos) own = own.substr(0, nested);
  fs::path dir = mount / fs::path(own).relative_path() / "cp-runs" / run_id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    why = "cannot create the cgroup " + dir.string() + ": " + ec.message();
    return nullptr;
  }
  std::unique_ptr<RunCgroup> cg(new RunCgroup(dir));
  if (cg->procs_fd_ < 0) {
    why = "cannot open " + (dir / "cgroup.procs").string() + " for writing";
    fs::remove(dir, ec);
    return nullptr;
  }
  return cg;
}

std::unique_ptr<RunCgroup> RunCgroup::attach(const fs::path& dir) {
  std::error_code ec;
  if (dir.empty() || !fs::exists(dir / "cgroup.procs", ec)) return nullptr;
  return std::unique_ptr<RunCgroup>(new RunCgroup(dir));
}

std::vector<int> RunCgroup::pids() const {
  std::vector<int> out;
  std::ifstream in(dir_ / "cgroup.procs");
  int pid = 0;
  while (in >> pid) out.push_back(pid);
  return out;
}

std::vector<int> RunCgroup::kill_all() const {
  std::vector<int> found = pids();
  if (found.empty()) return found;
  bool killed = write_file(dir_ / "cgroup.kill", "1");
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (true) {
    std::vector<int> left = pids();
    if (left.empty()) break;
    // Without cgroup.kill (kernels before 5.14), a pid at a time; a fork in between is caught next round.
    if (!killed)
      for (int pid : left) ::kill(pid, SIGKILL);
    if (std::chrono::steady_clock::now() > until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return found;
}

bool RunCgroup::destroy() {
  kill_all();
  if (!pids().empty()) return false;
  if (procs_fd_ >= 0) ::close(procs_fd_), procs_fd_ = -1;
  std::error_code ec;
  for (int i = 0; i < 50; ++i) {
    if (::rmdir(dir_.c_str()) == 0 || errno == ENOENT) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace cp::os
