#include "queue/queue_state.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace cp::queue {

using nlohmann::json;

const char* to_string(ItemState s) {
  switch (s) {
    case ItemState::queued:
      return "queued";
    case ItemState::claimed:
      return "claimed";
    case ItemState::running:
      return "running";
    case ItemState::done:
      return "done";
    case ItemState::cancelled:
      return "cancelled";
  }
  return "?";
}

bool QueueItem::should_retry(const std::string& st) const {
  if (cancel_requested) return false;
  if (st != "timeout" && st != "error") return false;
  return static_cast<int>(attempts.size()) < max_retries + 1;
}

double QueueItem::next_backoff_sec() const {
  int n = std::max<int>(1, static_cast<int>(attempts.size()));
  return backoff_sec * std::pow(2.0, n - 1);
}

void QueueState::clear() {
  items_.clear();
  problems_.clear();
  next_order_ = 0;
}

const QueueItem* QueueState::find(const std::string& id) const {
  auto it = items_.find(id);
  return it == items_.end() ? nullptr : &it->second;
}

bool QueueState::apply(const json& op, uint64_t line) {
  auto fail = [&](const std::string& m) {
    problems_.push_back({line, m});
    return false;
  };
  const std::string kind = op.value("op", "");
  const std::string id = op.value("item_id", "");
  const std::string ts = op.value("ts", "");
  if (kind == "enqueued") {
    if (items_.count(id)) return fail("item " + id + " enqueued twice");
    QueueItem it;
    it.item_id = id;
    it.task_id = op.value("task_id", "");
    it.pack = op.value("pack", "");
    it.contract_path = op.value("contract_path", "");
    it.repo = op.value("repo", "");
    it.workflow_id = op.value("workflow_id", "");
    it.enqueued_at = ts;
    it.run_after = op.value("run_after", "");
    it.deadline = op.value("deadline", "");
    it.start_by = op.value("start_by", "");
    it.priority = op.value("priority", 5);
    it.depends_on = op.value("depends_on", std::vector<std::string>{});
    it.max_retries = op.value("max_retries", 0);
    it.backoff_sec = op.value("backoff_sec", 0.0);
    it.timeout_sec = op.value("timeout_sec", 0);
    it.submitted_by = op.value("submitted_by", "");
    it.replay_of = op.value("replay_of", "");
    it.from_run = op.value("from_run", "");
    it.lock_paths = op.value("lock_paths", std::vector<std::string>{});
    it.lock_ttl_sec = op.value("lock_ttl_sec", 0);
    it.kind = op.value("kind", "");
    if (it.kind == "run") it.kind.clear();
    it.parent = op.value("parent", "");
    it.allow_failure = op.value("allow_failure", false);
    it.when = op.value("when", "");
    if (it.when == "on_success") it.when.clear();
    it.order = next_order_++;
    items_.emplace(id, std::move(it));
    return true;
  }
  auto found = items_.find(id);
  if (found == items_.end()) return fail(kind + " for unknown item " + id);
  QueueItem& it = found->second;
  const int attempt = op.value("attempt", 0);
  if (kind == "claimed") {
    if (it.state != ItemState::queued) return fail("item " + id + " claimed while " + to_string(it.state));
    if (attempt != static_cast<int>(it.attempts.size()) + 1)
      return fail("item " + id + " claimed at attempt " + std::to_string(attempt) + ", expected " +
                  std::to_string(it.attempts.size() + 1));
    Attempt a;
    a.attempt = attempt;
    a.claimed_at = ts;
    a.locks = op.value("locks", std::vector<std::string>{});
    a.lock_expires_at = op.value("lock_expires_at", "");
    a.worker = op.value("worker", "");
    it.attempts.push_back(a);
    it.state = ItemState::claimed;
    return true;
  }
  if (kind == "started") {
    if (it.state != ItemState::claimed || attempt != static_cast<int>(it.attempts.size()))
      return fail("item " + id + " started without its claim");
    it.attempts.back().run_id = op.value("run_id", "");
    it.attempts.back().started_at = ts;
    it.state = ItemState::running;
    return true;
  }
  if (kind == "finished") {
    if (!it.active() || attempt != static_cast<int>(it.attempts.size()))
      return fail("item " + id + " finished attempt " + std::to_string(attempt) + " while " +
                  to_string(it.state));
    Attempt& a = it.attempts.back();
    a.status = op.value("status", "");
    a.reason = op.value("reason", "");
    a.error = op.value("error", "");
    a.finished_at = ts;
    if (op.contains("run_id") && a.run_id.empty()) a.run_id = op["run_id"].get<std::string>();
    it.state = ItemState::done;
    it.status = a.status;
    it.reason = a.reason;
    it.error = a.error;
    return true;
  }
  if (kind == "retried") {
    if (it.state != ItemState::done) return fail("item " + id + " retried while " + to_string(it.state));
    it.state = ItemState::queued;
    it.retried_at.push_back(ts);
    it.run_after = op.value("run_after", "");
    it.status.clear();
    it.reason.clear();
    it.error.clear();
    return true;
  }
  if (kind == "settled") {
    if (!it.awaiting_decision())
      return fail("item " + id + " settled while " + to_string(it.state) + " " + it.status);
    it.status = op.value("status", "");
    it.reason = op.value("reason", "");
    it.decided = true;
    return true;
  }
  if (kind == "cancelled") {
    if (it.terminal()) return fail("item " + id + " cancelled after it ended");
    it.cancel_requested = true;
    it.cancel_reason = op.value("reason", "cancelled");
    it.cancel_by = op.value("by", "");
    if (it.state == ItemState::queued) {
      it.state = ItemState::cancelled;
      it.status = "cancelled";
      it.reason = it.cancel_reason;
    }
    return true;
  }
  if (kind == "locks_released" || kind == "locks_renewed") {
    if (!it.active() || attempt != static_cast<int>(it.attempts.size()))
      return fail("item " + id + " " + kind + " for attempt " + std::to_string(attempt) + " while " +
                  to_string(it.state));
    Attempt& a = it.attempts.back();
    if (kind == "locks_renewed") {
      a.lock_expires_at = op.value("lock_expires_at", a.lock_expires_at);
      return true;
    }
    // No `paths`: every lock of the attempt.
    std::vector<std::string> paths = op.value("paths", a.locks);
    for (const auto& p : paths)
      if (std::find(a.locks.begin(), a.locks.end(), p) != a.locks.end() &&
          std::find(a.released_locks.begin(), a.released_locks.end(), p) == a.released_locks.end())
        a.released_locks.push_back(p);
    return true;
  }
  if (kind == "held" || kind == "released") {
    if (it.terminal()) return fail("item " + id + " " + kind + " after it ended");
    it.held = kind == "held";
    return true;
  }
  if (kind == "priority_changed") {
    if (it.state != ItemState::queued)
      return fail("item " + id + " changed priority while " + to_string(it.state));
    it.priority = op.value("priority", it.priority);
    return true;
  }
  return fail("unknown operation '" + kind + "'");
}

Occupancy occupancy(const QueueState& state, int64_t now) {
  Occupancy o;
  for (const auto& [id, it] : state.items())
    if (it.active()) {
      ++o.total;
      ++o.per_pack[it.pack];
    }
  o.locks = held_locks(state, now != 0 ? now : now_ms());
  return o;
}

namespace {

// The locks of active attempts not released, those expired by `now` (`expired`) or the others.
std::vector<PathLock> attempt_locks(const QueueState& state, int64_t now, bool expired) {
  std::vector<std::pair<std::string, PathLock>> found;  // by claim time, then item and path
  for (const auto& [id, it] : state.items()) {
    if (!it.active()) continue;
    const Attempt& a = *it.current();
    if (a.locks.empty()) continue;
    int64_t until = parse_iso_ms(a.lock_expires_at);
    if ((until >= 0 && until <= now) != expired) continue;
    for (const auto& p : a.locks) {
      if (std::find(a.released_locks.begin(), a.released_locks.end(), p) != a.released_locks.end()) continue;
      PathLock l;
      l.lock_id = lock_id(it.item_id, a.attempt, it.repo, p);
      l.repo = it.repo;
      l.path = p;
      l.item_id = it.item_id;
      l.attempt = a.attempt;
      l.run_id = a.run_id;
      l.since = a.claimed_at;
      l.expires_at = a.lock_expires_at;
      found.emplace_back(a.claimed_at + "\n" + it.item_id, std::move(l));
    }
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<PathLock> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

}  // namespace

std::vector<PathLock> held_locks(const QueueState& state, int64_t now) {
  return attempt_locks(state, now, false);
}

std::vector<PathLock> expired_locks(const QueueState& state, int64_t now) {
  return attempt_locks(state, now, true);
}

namespace {

struct Sla {
  std::string state;
  int64_t since = -1;  // when it stopped being on track
  std::string bound;   // the bound it is about: deadline | start_by
};

Sla sla_of(const QueueItem& it, int64_t now) {
  int64_t deadline = it.deadline.empty() ? -1 : parse_iso_ms(it.deadline);
  int64_t start_by = it.start_by.empty() ? -1 : parse_iso_ms(it.start_by);
  int64_t expected = static_cast<int64_t>(it.timeout_sec) * 1000;
  if (it.terminal()) {
    const Attempt* a = it.current();
    int64_t end = a && !a->finished_at.empty() ? parse_iso_ms(a->finished_at) : now;
    int64_t started = a && !a->started_at.empty() ? parse_iso_ms(a->started_at) : -1;
    if (deadline >= 0 && end > deadline) return {"breached", deadline, "deadline"};
    if (start_by >= 0 && started > start_by) return {"breached", start_by, "start_by"};
    return {"on_track", -1, ""};
  }
  bool started = it.active();
  if (deadline >= 0 && now > deadline) return {"breached", deadline, "deadline"};
  if (!started && start_by >= 0 && now > start_by) return {"breached", start_by, "start_by"};
  if (deadline >= 0 && now + expected > deadline) return {"at_risk", deadline - expected, "deadline"};
  if (!started && start_by >= 0) {
    int64_t window = start_by - parse_iso_ms(it.enqueued_at);
    if (window > 0 && (start_by - now) * 4 < window)  // under a quarter of the wait left
      return {"at_risk", start_by - window / 4, "start_by"};
  }
  return {"on_track", -1, ""};
}

}  // namespace

Derived derive(const QueueItem& it, const QueueState& state, const Limits& limits, const Occupancy& occ,
               int64_t now) {
  Derived d;
  Sla sla = sla_of(it, now);
  d.sla_state = sla.state;
  d.sla_since_ms = sla.since;
  d.sla_bound = sla.bound;
  if (it.state != ItemState::queued) {
    d.why_not = to_string(it.state);
    return d;
  }
  for (const auto& dep : it.depends_on) {
    const QueueItem* other = state.find(dep);
    if (!other) {
      d.why_not = "waiting for unknown item " + dep;
      return d;
    }
    if (other->awaiting_decision()) {
      d.why_not =
          "waiting for the approval of item " + dep +
          (other->current() && !other->current()->run_id.empty() ? " (run " + other->current()->run_id + ")"
                                                                 : std::string());
      return d;
    }
    if (!other->terminal()) {
      d.why_not = "waiting for item " + dep;
      return d;
    }
    if (it.when == "always") continue;
    // allow_failure lets a failed run through, never a person's refusal of one that waited for approval.
    const bool allowed = other->status == "success" ||
                         (other->allow_failure && other->state == ItemState::done && !other->decided);
    if (!allowed) {
      d.blocked_by = dep;
      d.why_not = "dependency " + dep + " ended " + other->status;
      return d;
    }
  }
  if (it.held) {
    d.why_not = "held";
    return d;
  }
  if (!it.run_after.empty()) {
    int64_t after = parse_iso_ms(it.run_after);
    if (after > now) {
      d.why_not = "run_after " + it.run_after;
      return d;
    }
  }
  if (!it.lock_paths.empty())
    if (const PathLock* held = find_conflict(occ.locks, it.repo, it.lock_paths)) {
      d.why_not = held_by_text(*held);
      return d;
    }
  if (occ.total >= limits.global) {
    d.why_not = "global concurrency limit " + std::to_string(limits.global) + " reached";
    return d;
  }
  auto lim = limits.per_pack.find(it.pack);
  if (lim != limits.per_pack.end()) {
    auto used = occ.per_pack.find(it.pack);
    if (used != occ.per_pack.end() && used->second >= lim->second) {
      d.why_not = "pack " + it.pack + " concurrency limit " + std::to_string(lim->second) + " reached";
      return d;
    }
  }
  d.eligible = true;
  return d;
}

std::vector<const QueueItem*> in_run_order(const QueueState& state) {
  std::vector<const QueueItem*> v;
  for (const auto& [id, it] : state.items())
    if (it.state == ItemState::queued) v.push_back(&it);
  std::sort(v.begin(), v.end(), [](const QueueItem* a, const QueueItem* b) {
    return a->priority != b->priority ? a->priority > b->priority : a->order < b->order;
  });
  return v;
}

json to_json(const QueueItem& it, const Derived& d) {
  json j{{"item_id", it.item_id},
         {"task_id", it.task_id},
         {"pack", it.pack},
         {"priority", it.priority},
         {"state", to_string(it.state)},
         {"enqueued_at", it.enqueued_at},
         {"contract_path", it.contract_path},
         {"repo", it.repo},
         {"max_retries", it.max_retries},
         {"eligible", d.eligible},
         {"sla_state", d.sla_state},
         {"attempts", json::array()}};
  if (it.state == ItemState::queued && !d.eligible) j["waiting_on"] = d.why_not;
  if (!d.blocked_by.empty()) j["blocked_by"] = d.blocked_by;
  if (!it.depends_on.empty()) j["depends_on"] = it.depends_on;
  if (!it.run_after.empty()) j["run_after"] = it.run_after;
  if (!it.deadline.empty()) j["deadline"] = it.deadline;
  if (!it.start_by.empty()) j["start_by"] = it.start_by;
  if (!it.workflow_id.empty()) j["workflow_id"] = it.workflow_id;
  if (!it.submitted_by.empty()) j["submitted_by"] = it.submitted_by;
  if (!it.replay_of.empty()) j["replay_of"] = it.replay_of;
  if (!it.from_run.empty()) j["from_run"] = it.from_run;
  if (!it.lock_paths.empty()) j["lock_paths"] = it.lock_paths;
  if (!it.kind.empty()) j["kind"] = it.kind;
  if (!it.parent.empty()) j["parent"] = it.parent;
  if (it.allow_failure) j["allow_failure"] = true;
  if (!it.when.empty()) j["when"] = it.when;
  if (it.held) j["held"] = true;
  if (it.cancel_requested) j["cancel_requested"] = true;
  if (!it.status.empty()) j["status"] = it.status;
  if (!it.reason.empty()) j["reason"] = it.reason;
  if (!it.error.empty()) j["error"] = it.error;
  for (const auto& a : it.attempts) {
    json aj{{"attempt", a.attempt}, {"claimed_at", a.claimed_at}};
    if (!a.run_id.empty()) aj["run_id"] = a.run_id;
    if (!a.worker.empty()) aj["worker"] = a.worker;
    if (!a.started_at.empty()) aj["started_at"] = a.started_at;
    if (!a.finished_at.empty()) aj["finished_at"] = a.finished_at;
    if (!a.status.empty()) aj["status"] = a.status;
    if (!a.reason.empty()) aj["reason"] = a.reason;
    if (!a.error.empty()) aj["error"] = a.error;
    if (!a.locks.empty()) {
      aj["locks"] = a.locks;
      aj["lock_expires_at"] = a.lock_expires_at;
      if (!a.released_locks.empty()) aj["released_locks"] = a.released_locks;
    }
    j["attempts"].push_back(std::move(aj));
  }
  if (const Attempt* a = it.current(); a && !a->run_id.empty()) j["run_id"] = a->run_id;
  return j;
}

}  // namespace cp::queue
