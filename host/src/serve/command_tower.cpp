#include "serve/command_tower.hpp"

#include "core/clock.hpp"
#include "queue/path_locks.hpp"
#include "queue/queue_backend.hpp"

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kHourMs = 3600LL * 1000;
constexpr size_t kTopGates = 5;
constexpr size_t kNextApprovals = 5;
constexpr size_t kListedPerRule = 100;  // an alerts answer names at most this many alerts of one rule

json iso_or_null(int64_t ms) {
  return ms >= 0 ? json(core::iso_from_ms(ms)) : json(nullptr);
}

json window_json(const FinishedWindow& w) {
  return {{"finished", w.finished},
          {"succeeded", w.succeeded},
          {"success_rate", w.finished > 0
                               ? json(static_cast<double>(w.succeeded) / static_cast<double>(w.finished))
                               : json(nullptr)}};
}

json counts_json(const std::map<std::string, long long>& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

}  // namespace

CommandTower::CommandTower(fs::path root, const RunStats& runs, AlertPolicy policy)
    : root_(std::move(root)),
      runs_(runs),
      policy_(std::move(policy)),
      rules_(to_json(policy_)["rules"]),
      queue_(std::make_shared<QueueStats>()),
      disk_(std::make_shared<DiskState>()) {}

void CommandTower::refresh_queue(queue::QueueBackend& backend, int64_t now_ms) {
  auto snapshot = backend.list();
  set_queue(derive_queue_stats(snapshot->state, now_ms));
}

void CommandTower::set_queue(QueueStats q) {
  auto fresh = std::make_shared<const QueueStats>(std::move(q));
  std::lock_guard l(mu_);
  queue_ = std::move(fresh);
}

void CommandTower::measure_disk(int64_t now_ms) {
  auto d = std::make_shared<DiskState>();
  d->measured_ms = now_ms;
  try {
    d->lanes = retention::measure_capped_lanes(root_);
  } catch (const std::exception& e) {
    d->error = e.what();
  }
  auto before = disk_state();
  for (const auto& l : d->lanes) {
    if (!l.over()) continue;
    auto was = before->over_since.find(l.lane);
    d->over_since[l.lane] = was != before->over_since.end() ? was->second : now_ms;
  }
  std::lock_guard l(mu_);
  disk_ = std::move(d);
}

std::shared_ptr<const QueueStats> CommandTower::queue_stats() const {
  std::lock_guard l(mu_);
  return queue_;
}

std::shared_ptr<const DiskState> CommandTower::disk_state() const {
  std::lock_guard l(mu_);
  return disk_;
}

json CommandTower::overview(int64_t now_ms) const {
  const auto state = runs_.by_state();
  json runs{{"total", runs_.total()},
            {"live", runs_.live_runs()},
            {"by_state", counts_json(state)},
            {"by_verdict", counts_json(runs_.by_verdict())}};
  json throughput{{"last_hour", window_json(runs_.finished_since(now_ms - kHourMs))},
                  {"last_day", window_json(runs_.finished_since(now_ms - 24 * kHourMs))}};
  DurationPercentiles d = runs_.durations();
  json durations{{"runs", d.runs},
                 {"p50", d.p50 >= 0 ? json(d.p50) : json(nullptr)},
                 {"p95", d.p95 >= 0 ? json(d.p95) : json(nullptr)}};
  json gates = json::array();
  for (const auto& g : runs_.top_failing_gates(kTopGates))
    gates.push_back({{"gate_id", g.gate_id},
                     {"failures", g.failures()},
                     {"fail", g.fail},
                     {"error", g.error},
                     {"results", g.results},
                     {"failure_rate", static_cast<double>(g.failures()) / static_cast<double>(g.results)},
                     {"last_failed_run", g.last_failed_run},
                     {"last_failure_at", iso_or_null(g.last_failure_ms)}});
  auto q = queue_stats();
  json queue{{"as_of", iso_or_null(q->as_of_ms)},
             {"depth", q->depth},
             {"held", q->held},
             {"by_state", counts_json(q->by_state)},
             {"sla", {{"at_risk", q->at_risk}, {"breached", q->breached}}}};
  json held = json::array();
  for (const auto& l : q->locks) {
    if (held.size() >= kNextApprovals) break;
    held.push_back(queue::to_json(l));
  }
  json locks{{"active", q->locks.size()}, {"oldest", held}};
  auto next = runs_.awaiting_by_deadline(INT64_MAX, kNextApprovals);
  json upcoming = json::array();
  for (const auto& a : next)
    upcoming.push_back({{"run_id", a.run_id}, {"task_id", a.task_id}, {"deadline", a.deadline}});
  json approvals{{"awaiting", state.count("awaiting_approval") ? state.at("awaiting_approval") : 0},
                 {"nearest_deadline", upcoming.empty() ? json(nullptr) : upcoming[0]},
                 {"next_deadlines", upcoming}};
  auto disk = disk_state();
  json lanes = json::array();
  for (const auto& l : disk->lanes)
    lanes.push_back({{"lane", l.lane}, {"bytes", l.bytes}, {"cap_bytes", l.cap_bytes}, {"over", l.over()}});
  json disk_j{{"as_of", iso_or_null(disk->measured_ms)}, {"lanes", lanes}};
  if (!disk->error.empty()) disk_j["error"] = disk->error;
  // Moved in, not listed in an initializer: a braced list would copy every part once more.
  json out = json::object();
  out["generated_at"] = core::iso_from_ms(now_ms);
  out["runs"] = std::move(runs);
  out["throughput"] = std::move(throughput);
  out["duration_ms"] = std::move(durations);
  out["top_failing_gates"] = std::move(gates);
  out["queue"] = std::move(queue);
  out["approvals"] = std::move(approvals);
  out["locks"] = std::move(locks);
  out["disk"] = std::move(disk_j);
  return out;
}

json CommandTower::alerts(int64_t now_ms) const {
  auto q = queue_stats();
  auto disk = disk_state();
  auto circuits = plugin::open_circuits();
  std::vector<Alert> all = evaluate_alerts(policy_, {runs_, *q, *disk, circuits}, now_ms);
  json list = json::array();
  json by_severity{{"critical", 0}, {"warning", 0}, {"info", 0}};
  json by_rule = json::object();
  json omitted = json::object();
  std::map<std::string, size_t> listed;
  for (auto& a : all) {
    by_severity[a.severity] = by_severity[a.severity].get<long long>() + 1;
    by_rule[a.rule] = by_rule.value(a.rule, 0LL) + 1;
    if (listed[a.rule]++ >= kListedPerRule) {
      omitted[a.rule] = omitted.value(a.rule, 0LL) + 1;
      continue;
    }
    list.push_back(to_json(std::move(a)));
  }
  json out = json::object();
  out["generated_at"] = core::iso_from_ms(now_ms);
  out["count"] = all.size();
  out["by_severity"] = std::move(by_severity);
  out["by_rule"] = std::move(by_rule);
  out["omitted"] = std::move(omitted);
  out["alerts"] = std::move(list);
  out["rules"] = rules_;
  return out;
}

}  // namespace cp::serve
