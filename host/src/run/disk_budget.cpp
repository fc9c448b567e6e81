#include "run/disk_budget.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>

namespace cp::run {

namespace fs = std::filesystem;

uint64_t disk_usage(const std::vector<fs::path>& paths) {
  uint64_t total = 0;
  for (const auto& root : paths) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      struct stat st {};
      // A sparse file counts at its apparent size: git (collect, diff) would read every byte of it.
      if (::lstat(it->path().c_str(), &st) == 0)
        total += std::max(static_cast<uint64_t>(st.st_blocks) * 512,
                          S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : uint64_t{0});
    }
  }
  return total;
}

DiskBudget::DiskBudget(std::vector<fs::path> paths, uint64_t budget_bytes,
                       std::function<void(const std::string&)> on_exceed)
    : paths_(std::move(paths)), budget_(budget_bytes), on_exceed_(std::move(on_exceed)) {
  baseline_ = disk_usage(paths_);
  watcher_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (stopping_) break;
      lock.unlock();
      check();
      lock.lock();
    }
  });
}

DiskBudget::~DiskBudget() {
  stop();
}

void DiskBudget::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

bool DiskBudget::check() {
  if (exceeded_) return false;
  uint64_t now = disk_usage(paths_);
  uint64_t growth = now > baseline_ ? now - baseline_ : 0;
  used_ = growth;
  std::string why;
  if (growth > budget_) {
    why = "the run wrote " + std::to_string(growth / (1024 * 1024)) +
          " MiB (worktree, temp dir, artifacts, agent home), over its disk budget of " +
          std::to_string(budget_ / (1024 * 1024)) + " MiB (pack sandbox.disk_budget_mb)";
  } else if (!paths_.empty()) {
    struct statvfs vfs {};
    if (::statvfs(paths_.front().c_str(), &vfs) == 0) {
      uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      if (free_bytes < kFreeFloorBytes)
        why = "the filesystem of the run's worktree has " + std::to_string(free_bytes / (1024 * 1024)) +
              " MiB left, under the " + std::to_string(kFreeFloorBytes / (1024 * 1024)) +
              " MiB floor cp-host keeps free";
    }
  }
  if (why.empty()) return true;
  bool first = !exceeded_.exchange(true);
  {
    std::lock_guard lock(mu_);
    if (first) reason_ = why;
  }
  if (first && on_exceed_) on_exceed_(why);
  return false;
}

std::string DiskBudget::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

}  // namespace cp::run
