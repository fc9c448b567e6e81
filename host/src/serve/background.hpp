// The background threads of `cp-host serve`: the catalogue refresher (which also ends approvals whose
// deadline passed) and the retention janitor. Each runs from start() until stop().
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

namespace cp::plugin {
class Registry;
}

namespace cp::serve {

class RunCatalog;

// Every second: the catalogue catches up with the disk, and each run awaiting an approval past its deadline
// is denied by rule (default-deny) and re-read.
class CatalogRefresher {
 public:
  CatalogRefresher(std::filesystem::path root, RunCatalog& catalog)
      : root_(std::move(root)), catalog_(catalog) {}
  ~CatalogRefresher() { stop(); }
  CatalogRefresher(const CatalogRefresher&) = delete;
  CatalogRefresher& operator=(const CatalogRefresher&) = delete;

  void start();
  void stop();  // idempotent; waits for the thread

 private:
  void loop();
  std::filesystem::path root_;
  RunCatalog& catalog_;
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
