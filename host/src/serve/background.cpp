#include "serve/background.hpp"

#include "control/approvals.hpp"
#include "core/clock.hpp"
#include "retention/retention.hpp"
#include "serve/command_tower.hpp"
#include "serve/run_catalog.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::serve {

using nlohmann::json;

void CatalogRefresher::start() {
  thread_ = std::thread([this] { loop(); });
}

void CatalogRefresher::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void CatalogRefresher::loop() {
  while (!stopping_.load()) {
    for (int i = 0; i < 10 && !stopping_.load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    catalog_.refresh();
    // Approval deadlines: a run nobody decided in time is denied by rule (default-deny).
    for (const auto& id : control::expire_overdue(root_)) {
      catalog_.update(id);
      std::cerr << "cp-host serve: run " << id << " denied: approval deadline passed\n";
    }
    if (tower_ && queue_) {
      try {
        tower_->refresh_queue(*queue_, core::now_ms());
      } catch (const std::exception& e) {
        std::cerr << "cp-host serve: command tower: the queue could not be read: " << e.what() << "\n";
      }
    }
  }
}

void LaneMeasurer::start() {
  thread_ = std::thread([this] { loop(); });
}

void LaneMeasurer::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void LaneMeasurer::loop() {
  auto next = std::chrono::steady_clock::now();
  while (!stopping_.load()) {
    if (std::chrono::steady_clock::now() >= next) {
      tower_.measure_disk(core::now_ms());
      next = std::chrono::steady_clock::now() + every_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void RetentionJanitor::start() {
  thread_ = std::thread([this] { loop(); });
}

void RetentionJanitor::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void RetentionJanitor::loop() {
  auto next = std::chrono::steady_clock::now() + every_;
  while (!stopping_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (std::chrono::steady_clock::now() < next) continue;
    next += every_;
    apply_once();
  }
}

void RetentionJanitor::apply_once() {
  try {
    retention::Options ro;
    ro.root = root_;
    ro.by = "cp-host";
    ro.by_kind = "system";
    json rep = retention::apply(ro, registry_, retention::plan(ro, registry_));
    std::cerr << "cp-host serve: retention deleted " << rep["totals"].value("deleted", 0) << " entries, "
              << rep["totals"].value("reclaimed_bytes", 0LL) << " bytes\n";
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: retention: " << e.what() << "\n";
  }
}

}  // namespace cp::serve
