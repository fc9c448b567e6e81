#include "control/path_lock_release.hpp"

#include "log/log_lanes.hpp"
#include "queue/queue_backend.hpp"
#include "store/bundle.hpp"
#include "store/host_events.hpp"

#include <map>
#include <regex>

namespace cp::control {

using nlohmann::json;

namespace {

// The host event and one governance line per run whose locks went.
json record_release(const std::filesystem::path& root, const std::vector<queue::PathLock>& released,
                    const std::string& how, const Actor& who, const std::string& reason) {
  json locks = json::array();
  for (const auto& l : released) locks.push_back(queue::to_json(l));
  json payload{{"how", how}, {"by", who.by}, {"by_kind", who.by_kind}, {"reason", reason}, {"locks", locks}};
  std::map<std::string, std::vector<std::string>> per_holder;
  for (const auto& l : released) per_holder[l.run_id.empty() ? l.item_id : l.run_id].push_back(l.path);
  for (const auto& [holder, paths] : per_holder) {
    std::string list;
    for (const auto& p : paths) list += (list.empty() ? "" : ", ") + p;
    log::governance(
        holder, "locks",
        "path lock(s) " + list + " of " + holder + " released (" + how + ") by " + who.by + ": " + reason,
        {{"how", how}, {"by", who.by}, {"by_kind", who.by_kind}, {"paths", paths}, {"reason", reason}}, true);
  }
  return store::record_host_event(root, "PATH_LOCK_RELEASED", payload);
}

}  // namespace

LockReleaseResult force_release_locks(const std::filesystem::path& root, queue::QueueBackend& backend,
                                      const LockReleaseAsk& ask, const Actor& who) {
  LockReleaseResult r;
  auto invalid = [&](const std::string& pointer, const std::string& message) {
    r.outcome = LockReleaseResult::Outcome::invalid;
    r.pointer = pointer;
    r.message = message;
    return r;
  };
  if (ask.lock_id.empty() == ask.run_id.empty())
    return invalid(ask.lock_id.empty() ? "/lock" : "/run_id",
                   "name exactly one of lock (a lock id from GET /api/locks or `cp-host locks list`) and "
                   "run_id (every lock of that run, or only `path` of them)");
  static const std::regex kLockId("lk-[0-9a-f]{16}");
  if (!ask.lock_id.empty() && !std::regex_match(ask.lock_id, kLockId))
    return invalid("/lock", "'" + ask.lock_id + "' is not a lock id (lk- and 16 hex digits, as listed)");
  if (!ask.lock_id.empty() && !ask.path.empty())
    return invalid("/path", "path goes with run_id; a lock id names its path already");
  if (!ask.run_id.empty() && !store::valid_run_id(ask.run_id))
    return invalid("/run_id", "'" + ask.run_id + "' is not a run id (letters, digits, '.', '_', '-')");
  std::string path;
  if (!ask.path.empty()) {
    std::string why;
    auto n = queue::normalise_lock_path(ask.path, &why);
    if (!n) return invalid("/path", "'" + ask.path + "' is not a path in the repository: " + why);
    path = *n;
  }
  bool blank = true;
  for (char c : ask.reason)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') blank = false;
  if (blank) {
    r.outcome = LockReleaseResult::Outcome::reason_missing;
    r.pointer = "/reason";
    r.message = "a reason is required: say why the lock may go while its run may still be working";
    return r;
  }
  queue::LockRelease req;
  req.lock_id = ask.lock_id;
  req.run_id = ask.run_id;
  req.path = path;
  req.by = who.by;
  req.reason = ask.reason;
  queue::LockReleaseOutcome out = backend.release_locks(req);
  if (out.released.empty()) {
    r.outcome = LockReleaseResult::Outcome::not_found;
    r.message = !ask.lock_id.empty() ? "no held lock " + ask.lock_id
                : path.empty()       ? "run " + ask.run_id + " holds no lock"
                                     : "run " + ask.run_id + " holds no lock on " + path;
    return r;
  }
  r.outcome = LockReleaseResult::Outcome::released;
  r.released = out.released;
  r.event = record_release(root, out.released, "forced", who, ask.reason);
  return r;
}

std::vector<queue::PathLock> reap_expired_locks(const std::filesystem::path& root,
                                                queue::QueueBackend& backend, int64_t now) {
  auto reaped = backend.reap_expired_locks(now, "cp-host");
  if (reaped.empty()) return reaped;
  // One event per attempt: each has its own expiry.
  std::map<std::pair<std::string, int>, std::vector<queue::PathLock>> per_attempt;
  for (const auto& l : reaped) per_attempt[{l.item_id, l.attempt}].push_back(l);
  for (const auto& [key, locks] : per_attempt)
    record_release(root, locks, "expired", rule("TTL passed"),
                   "the lock's TTL passed at " + locks.front().expires_at + " without a renewal");
  return reaped;
}

}  // namespace cp::control
