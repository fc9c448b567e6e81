// The command tower: what needs attention across the runtime root, answered from state kept up to date as
// runs and queue items change — RunStats (fed by the run catalogue as it refreshes), QueueStats (derived by
// the catalogue refresher each tick), the capped lanes' sizes (measured on the retention rule's slow timer)
// and this process's plugin breaker. overview() and alerts() only read that state; neither touches a bundle
// or the queue file. `GET /api/command-tower/*` and `cp-host tower` both answer from here.
#pragma once

#include "serve/alert_rules.hpp"
#include "serve/queue_stats.hpp"
#include "serve/run_stats.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>

namespace cp::queue {
class QueueBackend;
}

namespace cp::serve {

class CommandTower {
 public:
  CommandTower(std::filesystem::path root, const RunStats& runs, AlertPolicy policy);

  const AlertPolicy& policy() const { return policy_; }

  // Derives the queue's state from its current snapshot (cheap while the queue did not change; SLA states
  // still move with the clock, so this runs every tick).
  void refresh_queue(queue::QueueBackend& backend, int64_t now_ms);
  void set_queue(QueueStats q);
  // Measures the capped retention lanes (a walk of their folders: call it from a background thread).
  void measure_disk(int64_t now_ms);

  nlohmann::json overview(int64_t now_ms) const;
  nlohmann::json alerts(int64_t now_ms) const;

 private:
  std::shared_ptr<const QueueStats> queue_stats() const;
  std::shared_ptr<const DiskState> disk_state() const;

  std::filesystem::path root_;
  const RunStats& runs_;
  AlertPolicy policy_;
  nlohmann::json rules_;   // the policy's rules as the alerts answer shows them, built once
  mutable std::mutex mu_;  // guards the two pointers; what they point to never changes
  std::shared_ptr<const QueueStats> queue_;
  std::shared_ptr<const DiskState> disk_;
};

}  // namespace cp::serve
