// The per-run disk budget: how much a run's worktree and temp dir may grow, and a floor of free space on
// their filesystem. A watcher thread measures both every second while the run's processes live; over
// either, it calls `on_exceed` once (which stops the run) and the run is sealed denied with the reason.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cp::run {

// Bytes beneath the paths, without following symbolic links: what each file holds on disk, or its apparent
// size when larger (a sparse file costs git every byte when it is collected).
uint64_t disk_usage(const std::vector<std::filesystem::path>& paths);

class DiskBudget {
 public:
  // `baseline` is the usage at the start (the checked-out tree); the budget is on growth above it.
  DiskBudget(std::vector<std::filesystem::path> paths, uint64_t budget_bytes,
             std::function<void(const std::string& reason)> on_exceed);
  ~DiskBudget();
  DiskBudget(const DiskBudget&) = delete;
  DiskBudget& operator=(const DiskBudget&) = delete;

  // Measures now (the watcher does this every second). True while within the budget.
  bool check();
  void stop();
  bool exceeded() const { return exceeded_.load(); }
  std::string reason() const;
  uint64_t used_bytes() const { return used_.load(); }
  uint64_t budget_bytes() const { return budget_; }

  // The free space the filesystem must keep: below it, every run on it is stopped.
  static constexpr uint64_t kFreeFloorBytes = 256ull * 1024 * 1024;

 private:
  std::vector<std::filesystem::path> paths_;
  uint64_t budget_;
  uint64_t baseline_ = 0;
  std::function<void(const std::string&)> on_exceed_;
  std::atomic<uint64_t> used_{0};
  std::atomic<bool> exceeded_{false};
  mutable std::mutex mu_;
  std::string reason_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace cp::run
