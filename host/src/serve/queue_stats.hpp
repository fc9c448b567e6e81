// The command tower's view of the queue: depth, items by state, which items are at risk of or past their
// SLA, and when retries happened. Derived from one queue snapshot at one moment (the catalogue refresher
// does so every tick, since SLA states move with the clock), then read as a value by the overview and the
// alerts: a request never replays the queue.
#pragma once

#include "queue/queue_backend.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cp::serve {

struct SlaItem {
  std::string item_id, task_id, state;  // state: the item's queue state (queued, running, ...)
  std::string sla_state;                // at_risk | breached
  std::string bound;                    // deadline | start_by: the bound it is about
  std::string deadline, start_by;
  int64_t since_ms = -1;  // when it became at risk or breached
};

struct QueueStats {
  int64_t as_of_ms = -1;  // -1: never derived (no queue seen yet)
  std::map<std::string, long long> by_state;
  long long depth = 0;  // items waiting to run (queued), held ones included
  long long held = 0;
  long long at_risk = 0, breached = 0;  // items that have not ended
  std::vector<SlaItem> sla;             // those items, most urgent first (breached, then by since)
  // When each retry re-queued an item, oldest first (items the queue still holds: compaction drops ended
  // items after a day).
  std::vector<std::pair<int64_t, std::string>> retries;
  std::vector<queue::PathLock> locks;  // the path locks held (not expired), oldest first

  // Retries at or after `since_ms`.
  long long retries_since(int64_t since_ms) const;
};

QueueStats derive_queue_stats(const queue::QueueState& state, int64_t now_ms);

}  // namespace cp::serve
