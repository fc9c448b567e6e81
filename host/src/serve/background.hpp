// The background threads of `cp-host serve`: the catalogue refresher (which also ends approvals whose
// deadline passed and brings the command tower's queue view up to date), the lane measurer of the command
// tower, and the retention janitor. Each runs from start() until stop().
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

namespace cp::plugin {
class Registry;
}
namespace cp::queue {
class QueueBackend;
}

namespace cp::serve {

class RunCatalog;
class CommandTower;

// Every second: the catalogue catches up with the disk (its RunStats with it), each run awaiting an approval
// past its deadline is denied by rule (default-deny) and re-read, and, given a tower and a queue, the
// tower's view of the queue is derived again (SLA states move with the clock even when the queue does not).
class CatalogRefresher {
 public:
  CatalogRefresher(std::filesystem::path root, RunCatalog& catalog, CommandTower* tower = nullptr,
                   queue::QueueBackend* queue = nullptr)
      : root_(std::move(root)), catalog_(catalog), tower_(tower), queue_(queue) {}
  ~CatalogRefresher() { stop(); }
  CatalogRefresher(const CatalogRefresher&) = delete;
  CatalogRefresher& operator=(const CatalogRefresher&) = delete;

  void start();
  void stop();  // idempotent; waits for the thread

 private:
  void loop();
  std::filesystem::path root_;
  RunCatalog& catalog_;
  CommandTower* tower_;
  queue::QueueBackend* queue_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The command tower's measure of the capped retention lanes: at start, then every `every` (the
// retention_over_cap rule's check_every_sec). A walk of the lanes' folders, so never on a request's path.
class LaneMeasurer {
 public:
  LaneMeasurer(CommandTower& tower, std::chrono::milliseconds every) : tower_(tower), every_(every) {}
  ~LaneMeasurer() { stop(); }
  LaneMeasurer(const LaneMeasurer&) = delete;
  LaneMeasurer& operator=(const LaneMeasurer&) = delete;

  void start();
  void stop();  // idempotent; waits for the thread (a walk in progress finishes first)

 private:
  void loop();
  CommandTower& tower_;
  std::chrono::milliseconds every_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// `retention apply` (policies/retention_policy.json, the lane plugins) every `every`, first after one
// period.
class RetentionJanitor {
 public:
  RetentionJanitor(std::filesystem::path root, const plugin::Registry& registry,
                   std::chrono::milliseconds every)
      : root_(std::move(root)), registry_(registry), every_(every) {}
  ~RetentionJanitor() { stop(); }
  RetentionJanitor(const RetentionJanitor&) = delete;
  RetentionJanitor& operator=(const RetentionJanitor&) = delete;

  void start();
  void stop();  // idempotent; waits for the thread

 private:
  void loop();
  void apply_once();
  std::filesystem::path root_;
  const plugin::Registry& registry_;
  std::chrono::milliseconds every_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace cp::serve
