#include "queue/log_queue_backend.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace cp::queue {

using nlohmann::json;

namespace {

std::string now_iso() {
  return iso_from_ms(now_ms());
}

// The first item claim() would take: run order, eligible under `limits` at `now`.
const QueueItem* first_eligible(const QueueState& st, const Limits& limits, int64_t now) {
  Occupancy occ = occupancy(st, now);
  for (const QueueItem* it : in_run_order(st))
    if (derive(*it, st, limits, occ, now).eligible) return it;
  return nullptr;
}

// The operations that end the current attempt of `it` with `end`, and queue it again when its retry policy
// says so.
std::vector<json> end_attempt(const QueueItem& it, const AttemptEnd& end, FinishOutcome& out) {
  const Attempt* a = it.current();
  json fin{{"op", "finished"},      {"item_id", it.item_id}, {"ts", now_iso()},
           {"attempt", a->attempt}, {"status", end.status},  {"reason", end.reason}};
  if (!a->run_id.empty()) fin["run_id"] = a->run_id;
  if (!end.error.empty()) fin["error"] = end.error;
  std::vector<json> ops{fin};
  if (it.should_retry(end.status)) {
    int64_t after = now_ms() + static_cast<int64_t>(it.next_backoff_sec() * 1000);
    out.retried = true;
    out.run_after = iso_from_ms(after);
    ops.push_back({{"op", "retried"},
                   {"item_id", it.item_id},
                   {"ts", now_iso()},
                   {"attempt", a->attempt + 1},
                   {"run_after", out.run_after},
                   {"reason", end.status + ": " + end.reason}});
  }
  return ops;
}

}  // namespace

LogQueueBackend::LogQueueBackend(std::unique_ptr<OpLog> log) : log_(std::move(log)) {}

void LogQueueBackend::note_change_locked() {
  if (log_->generation() == seen_generation_) return;
  seen_generation_ = log_->generation();
  ++version_;
  snapshot_.reset();
  changed_.notify_all();
}

void LogQueueBackend::refresh_locked() {
  log_->refresh();
  note_change_locked();
}

void LogQueueBackend::transact_locked(const OpLog::Decide& decide) {
  try {
    log_->transact(decide);
  } catch (...) {
    note_change_locked();  // it may have caught up before refusing
    throw;
  }
  note_change_locked();
}

namespace {

// The `enqueued` operation of a new item.
json enqueue_op(const NewItem& item, const std::string& ts) {
  json op{{"op", "enqueued"},
          {"item_id", item.item_id},
          {"ts", ts},
          {"task_id", item.task_id},
          {"pack", item.pack},
          {"contract_path", item.contract_path},
          {"repo", item.repo},
          {"priority", item.priority},
          {"max_retries", item.max_retries},
          {"backoff_sec", item.backoff_sec},
          {"timeout_sec", item.timeout_sec}};
  if (!item.depends_on.empty()) op["depends_on"] = item.depends_on;
  if (!item.run_after.empty()) op["run_after"] = item.run_after;
  if (!item.deadline.empty()) op["deadline"] = item.deadline;
  if (!item.start_by.empty()) op["start_by"] = item.start_by;
  if (!item.submitted_by.empty()) op["submitted_by"] = item.submitted_by;
  if (!item.workflow_id.empty()) op["workflow_id"] = item.workflow_id;
  if (!item.replay_of.empty()) op["replay_of"] = item.replay_of;
  if (!item.from_run.empty()) op["from_run"] = item.from_run;
  if (!item.lock_paths.empty()) op["lock_paths"] = item.lock_paths;
  if (item.lock_ttl_sec > 0) op["lock_ttl_sec"] = item.lock_ttl_sec;
  if (!item.kind.empty()) op["kind"] = item.kind;
  if (!item.parent.empty()) op["parent"] = item.parent;
  if (item.allow_failure) op["allow_failure"] = true;
  if (!item.when.empty()) op["when"] = item.when;
  return op;
}

}  // namespace

SubmitOutcome LogQueueBackend::submit(const NewItem& item) {
  BatchOutcome b = submit_all({item});
  SubmitOutcome out;
  out.kind = b.kind;
  out.missing = b.missing;
  if (!b.items.empty()) out.item = b.items.front();
  return out;
}

BatchOutcome LogQueueBackend::submit_all(const std::vector<NewItem>& items) {
  BatchOutcome out;
  const std::string ts = now_iso();
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    out = {};
    std::set<std::string> batch;
    std::vector<json> ops;
    for (const auto& item : items) {
      if (st.find(item.item_id) || batch.count(item.item_id)) {
        out.kind = SubmitOutcome::Kind::duplicate;
        out.item_id = item.item_id;
        return {};
      }
      for (const auto& d : item.depends_on)
        if (!st.find(d) && !batch.count(d)) {
          out.kind = SubmitOutcome::Kind::missing_dependency;
          out.item_id = item.item_id;
          out.missing = d;
          return {};
        }
      batch.insert(item.item_id);
      ops.push_back(enqueue_op(item, ts));
    }
    return ops;
  });
  if (out.kind == SubmitOutcome::Kind::queued)
    for (const auto& item : items)
      if (const QueueItem* it = log_->state().find(item.item_id)) out.items.push_back(*it);
  return out;
}

Change LogQueueBackend::settle(const std::string& item_id, const std::string& status,
                               const std::string& reason, const std::string& by) {
  Change out = Change::not_found;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out = Change::not_found;
      return {};
    }
    if (!it->awaiting_decision()) {
      // Settled already with this outcome: nothing to do; anything else is not waiting for a decision.
      bool settled_so = it->state == ItemState::done && it->status == status && it->current() &&
                        it->current()->status == "awaiting_approval";
      out = settled_so ? Change::unchanged : Change::refused;
      return {};
    }
    out = Change::applied;
    json op{
        {"op", "settled"}, {"item_id", item_id}, {"ts", now_iso()}, {"status", status}, {"reason", reason}};
    if (!by.empty()) op["by"] = by;
    return {op};
  });
  return out;
}

std::optional<QueueItem> LogQueueBackend::claim(const ClaimRequest& req) {
  const int64_t now = req.now != 0 ? req.now : now_ms();
  std::lock_guard<std::mutex> l(mu_);
  // Most calls find nothing to claim: that is decided without taking the file lock.
  refresh_locked();
  if (!first_eligible(log_->state(), req.limits, now)) return std::nullopt;
  std::string claimed;
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    claimed.clear();
    const QueueItem* it = first_eligible(st, req.limits, now);
    if (!it) return {};
    claimed = it->item_id;
    const int attempt = static_cast<int>(it->attempts.size()) + 1;
    std::vector<json> ops{
        {{"op", "claimed"}, {"item_id", it->item_id}, {"ts", now_iso()}, {"attempt", attempt}}};
    if (!it->lock_paths.empty()) {
      // The locks, judged free by first_eligible() under the file lock, are taken by this same line.
      const int64_t ttl = lock_ttl_ms(*it, req.lock_ttl_ms);
      ops[0]["locks"] = it->lock_paths;
      ops[0]["lock_expires_at"] = iso_from_ms(now + ttl);
    }
    if (!req.worker.empty()) ops[0]["worker"] = req.worker;
    if (req.name_run)
      ops.push_back({{"op", "started"},
                     {"item_id", it->item_id},
                     {"ts", now_iso()},
                     {"attempt", attempt},
                     {"run_id", req.name_run(*it)}});
    return ops;
  });
  if (claimed.empty()) return std::nullopt;
  const QueueItem* it = log_->state().find(claimed);
  if (!it) return std::nullopt;
  return *it;
}

Change LogQueueBackend::start(const std::string& item_id, int attempt, const std::string& run_id) {
  Change out = Change::not_found;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out = Change::not_found;
      return {};
    }
    const bool current = it->current() && it->current()->attempt == attempt;
    if (current && it->state == ItemState::running && it->current()->run_id == run_id) {
      out = Change::unchanged;
      return {};
    }
    if (!current || it->state != ItemState::claimed) {
      out = Change::refused;
      return {};
    }
    out = Change::applied;
    return {{{"op", "started"},
             {"item_id", item_id},
             {"ts", now_iso()},
             {"attempt", attempt},
             {"run_id", run_id}}};
  });
  return out;
}

FinishOutcome LogQueueBackend::finish(const std::string& item_id, int attempt, const AttemptEnd& end) {
  FinishOutcome out;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    out = {};
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out.change = Change::not_found;
      return {};
    }
    if (attempt >= 1 && attempt <= static_cast<int>(it->attempts.size()) &&
        !it->attempts[static_cast<size_t>(attempt) - 1].finished_at.empty()) {
      out.change = Change::unchanged;
      return {};
    }
    if (!it->active() || it->current()->attempt != attempt) {
      out.change = Change::refused;
      return {};
    }
    out.change = Change::applied;
    return end_attempt(*it, end, out);
  });
  return out;
}

FinishOutcome LogQueueBackend::requeue_lost(const std::string& item_id, int attempt,
                                            const std::string& reason) {
  FinishOutcome out;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    out = {};
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out.change = Change::not_found;
      return {};
    }
    if (!it->active() || it->current()->attempt != attempt) {
      out.change = Change::refused;
      return {};
    }
    out.change = Change::applied;
    const Attempt* a = it->current();
    json fin{{"op", "finished"},  {"item_id", item_id}, {"ts", now_iso()},   {"attempt", attempt},
             {"status", "error"}, {"reason", reason},   {"lease_lost", true}};
    if (!a->run_id.empty()) fin["run_id"] = a->run_id;
    if (it->cancel_requested) {
      fin["status"] = "cancelled";
      fin["reason"] = "cancel requested (" + it->cancel_reason + "); " + reason;
      return {fin};
    }
    out.retried = true;
    out.run_after = now_iso();
    return {fin, json{{"op", "retried"},
                      {"item_id", item_id},
                      {"ts", now_iso()},
                      {"attempt", attempt + 1},
                      {"run_after", out.run_after},
                      {"reason", "lease lost: " + reason}}};
  });
  return out;
}

Change LogQueueBackend::retry(const std::string& item_id, const RetryRequest& req) {
  Change out = Change::not_found;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out = Change::not_found;
      return {};
    }
    if (it->state == ItemState::queued) {
      out = Change::unchanged;
      return {};
    }
    if (it->state != ItemState::done) {
      out = Change::refused;
      return {};
    }
    out = Change::applied;
    json op{{"op", "retried"},
            {"item_id", item_id},
            {"ts", now_iso()},
            {"attempt", static_cast<int>(it->attempts.size()) + 1},
            {"run_after", req.run_after.empty() ? now_iso() : req.run_after}};
    if (!req.reason.empty()) op["reason"] = req.reason;
    return {op};
  });
  return out;
}

CancelOutcome LogQueueBackend::cancel(const std::string& item_id, const std::string& by,
                                      const std::string& reason) {
  CancelOutcome out = CancelOutcome::not_found;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    out = CancelOutcome::not_found;
    const QueueItem* it = st.find(item_id);
    if (!it) return {};
    if (it->terminal()) {
      out = CancelOutcome::already_ended;
      return {};
    }
    out = it->state == ItemState::queued ? CancelOutcome::cancelled : CancelOutcome::requested;
    if (it->cancel_requested) return {};
    json op{{"op", "cancelled"}, {"item_id", item_id}, {"ts", now_iso()}, {"reason", reason}};
    if (!by.empty()) op["by"] = by;
    return {op};
  });
  return out;
}

Change LogQueueBackend::set_held(const std::string& item_id, const std::string& by, bool held) {
  Change out = Change::not_found;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out = Change::not_found;
      return {};
    }
    if (it->terminal()) {
      out = Change::refused;
      return {};
    }
    if (it->held == held) {
      out = Change::unchanged;
      return {};
    }
    out = Change::applied;
    json op{{"op", held ? "held" : "released"}, {"item_id", item_id}, {"ts", now_iso()}};
    if (!by.empty()) op["by"] = by;
    return {op};
  });
  return out;
}

Change LogQueueBackend::hold(const std::string& item_id, const std::string& by) {
  return set_held(item_id, by, true);
}

Change LogQueueBackend::release(const std::string& item_id, const std::string& by) {
  return set_held(item_id, by, false);
}

Change LogQueueBackend::set_priority(const std::string& item_id, int priority, const std::string& by) {
  Change out = Change::not_found;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out = Change::not_found;
      return {};
    }
    if (it->state != ItemState::queued) {
      out = Change::refused;
      return {};
    }
    if (it->priority == priority) {
      out = Change::unchanged;
      return {};
    }
    out = Change::applied;
    json op{{"op", "priority_changed"}, {"item_id", item_id}, {"ts", now_iso()}, {"priority", priority}};
    if (!by.empty()) op["by"] = by;
    return {op};
  });
  return out;
}

std::shared_ptr<const Snapshot> LogQueueBackend::list() {
  std::lock_guard<std::mutex> l(mu_);
  refresh_locked();
  if (!snapshot_) {
    auto s = std::make_shared<Snapshot>();
    s->state = log_->state();
    s->problems = log_->problems();
    s->version = version_;
    snapshot_ = std::move(s);
  }
  return snapshot_;
}

uint64_t LogQueueBackend::version() {
  std::lock_guard<std::mutex> l(mu_);
  refresh_locked();
  return version_;
}

uint64_t LogQueueBackend::watch(uint64_t since, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    refresh_locked();
    if (version_ != since) return version_;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return version_;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (log_->notifies()) {
      // Everyone's changes, this object's included, come as notifications on the log's own connection;
      // the second's poll covers one lost while that connection was down.
      l.unlock();
      log_->wait_for_others(std::min<std::chrono::milliseconds>(left, std::chrono::seconds(1)));
      l.lock();
      continue;
    }
    // Woken at once by this object's own changes; other processes' are seen at the next poll.
    changed_.wait_for(l, std::min<std::chrono::milliseconds>(left, kWatchPoll),
                      [&] { return version_ != since; });
  }
}

size_t LogQueueBackend::compact(const CompactRequest& req) {
  std::lock_guard<std::mutex> l(mu_);
  refresh_locked();
  if (req.only_above > 0 && log_->lines() <= req.only_above) return 0;
  size_t dropped = 0;
  try {
    dropped = log_->compact(req.keep_terminal_ms);
  } catch (...) {
    note_change_locked();
    throw;
  }
  note_change_locked();
  return dropped;
}

LockReleaseOutcome LogQueueBackend::release_locks(const LockRelease& req) {
  const int64_t now = req.now != 0 ? req.now : now_ms();
  LockReleaseOutcome out;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    out = {};
    std::vector<PathLock> held = held_locks(st, now);
    if (!req.item_id.empty()) {
      // The attempt's own end (its seal): expired locks go too, so nothing of it is left to reap.
      std::vector<PathLock> late = expired_locks(st, now);
      held.insert(held.end(), late.begin(), late.end());
    }
    std::string want_path;
    if (!req.path.empty()) want_path = normalise_lock_path(req.path).value_or(req.path);
    for (const auto& lk : held) {
      bool match = !req.lock_id.empty() ? lk.lock_id == req.lock_id
                   : !req.run_id.empty()
                       ? lk.run_id == req.run_id && (want_path.empty() || same_lock_path(lk.path, want_path))
                   : !req.item_id.empty() ? lk.item_id == req.item_id && lk.attempt == req.attempt
                                          : false;
      if (match) out.released.push_back(lk);
    }
    if (out.released.empty()) return {};
    out.change = Change::applied;
    // One operation per attempt, naming the paths it releases.
    std::map<std::pair<std::string, int>, std::vector<std::string>> by_attempt;
    for (const auto& lk : out.released) by_attempt[{lk.item_id, lk.attempt}].push_back(lk.path);
    std::vector<json> ops;
    for (const auto& [key, paths] : by_attempt) {
      json op{{"op", "locks_released"},
              {"item_id", key.first},
              {"ts", now_iso()},
              {"attempt", key.second},
              {"paths", paths}};
      if (!req.by.empty()) op["by"] = req.by;
      if (!req.reason.empty()) op["reason"] = req.reason;
      ops.push_back(std::move(op));
    }
    return ops;
  });
  return out;
}

Change LogQueueBackend::renew_locks(const std::string& item_id, int attempt, int64_t expires_at_ms,
                                    int64_t now) {
  if (now == 0) now = now_ms();
  Change out = Change::not_found;
  std::lock_guard<std::mutex> l(mu_);
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    const QueueItem* it = st.find(item_id);
    if (!it) {
      out = Change::not_found;
      return {};
    }
    bool holds = false;
    if (it->active() && it->current()->attempt == attempt)
      for (const auto& lk : held_locks(st, now))
        if (lk.item_id == item_id) holds = true;
    if (!holds) {
      out = Change::refused;
      return {};
    }
    if (parse_iso_ms(it->current()->lock_expires_at) >= expires_at_ms) {
      out = Change::unchanged;
      return {};
    }
    out = Change::applied;
    return {{{"op", "locks_renewed"},
             {"item_id", item_id},
             {"ts", now_iso()},
             {"attempt", attempt},
             {"lock_expires_at", iso_from_ms(expires_at_ms)}}};
  });
  return out;
}

std::vector<PathLock> LogQueueBackend::reap_expired_locks(int64_t now, const std::string& by) {
  if (now == 0) now = now_ms();
  std::vector<PathLock> reaped;
  std::lock_guard<std::mutex> l(mu_);
  // Most calls find nothing: that is decided without taking the file lock.
  refresh_locked();
  if (expired_locks(log_->state(), now).empty()) return {};
  transact_locked([&](const QueueState& st) -> std::vector<json> {
    reaped = expired_locks(st, now);
    std::map<std::pair<std::string, int>, std::pair<std::vector<std::string>, std::string>> by_attempt;
    for (const auto& lk : reaped) {
      auto& e = by_attempt[{lk.item_id, lk.attempt}];
      e.first.push_back(lk.path);
      e.second = lk.expires_at;
    }
    std::vector<json> ops;
    for (const auto& [key, e] : by_attempt) {
      json op{{"op", "locks_released"}, {"item_id", key.first}, {"ts", now_iso()},
              {"attempt", key.second},  {"paths", e.first},     {"reason", "expired at " + e.second}};
      if (!by.empty()) op["by"] = by;
      ops.push_back(std::move(op));
    }
    return ops;
  });
  return reaped;
}

}  // namespace cp::queue
