#include "serve/queue_stats.hpp"

#include <algorithm>

namespace cp::serve {

long long QueueStats::retries_since(int64_t since_ms) const {
  auto from = std::lower_bound(retries.begin(), retries.end(), std::pair<int64_t, std::string>(since_ms, ""));
  return static_cast<long long>(retries.end() - from);
}

QueueStats derive_queue_stats(const queue::QueueState& state, int64_t now_ms) {
  QueueStats q;
  q.as_of_ms = now_ms;
  // Eligibility is not asked for here, so the limits and occupancy derive() takes do not matter.
  const queue::Limits limits;
  const queue::Occupancy occ;
  for (const auto& [id, it] : state.items()) {
    ++q.by_state[queue::to_string(it.state)];
    for (const auto& at : it.retried_at) {
      int64_t ms = queue::parse_iso_ms(at);
      if (ms >= 0) q.retries.emplace_back(ms, id);
    }
    if (it.terminal()) continue;
    if (it.state == queue::ItemState::queued) {
      ++q.depth;
      if (it.held) ++q.held;
    }
    queue::Derived d = queue::derive(it, state, limits, occ, now_ms);
    if (d.sla_state != "at_risk" && d.sla_state != "breached") continue;
    ++(d.sla_state == "breached" ? q.breached : q.at_risk);
    q.sla.push_back({id, it.task_id, queue::to_string(it.state), d.sla_state, d.sla_bound, it.deadline,
                     it.start_by, d.sla_since_ms});
  }
  q.locks = queue::held_locks(state, now_ms);
  std::sort(q.retries.begin(), q.retries.end());
  std::sort(q.sla.begin(), q.sla.end(), [](const SlaItem& a, const SlaItem& b) {
    if (a.sla_state != b.sla_state) return a.sla_state == "breached";
    return a.since_ms != b.since_ms ? a.since_ms < b.since_ms : a.item_id < b.item_id;
  });
  return q;
}

}  // namespace cp::serve
