// Path locks: the locks queued runs hold (GET /api/locks), and an admin's forced release of one lock or of a
// run's locks (POST /api/locks/release), which control/path_lock_release.hpp records as a host event and in
// the governance lane.
#include "control/actor.hpp"
#include "control/path_lock_release.hpp"
#include "queue/queue_service.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/scheduler.hpp"

namespace cp::serve {

using nlohmann::json;

namespace {

ApiResponse list_locks(const ApiServices& s, const RouteCall&) {
  return ok_json(s.queue.locks());
}

ApiResponse release(const ApiServices& s, const RouteCall& c) {
  auto b = object_body(c.req.body);
  if (!b || b->empty())
    return error(400, "bad_body",
                 "the body must be a JSON object such as {\"lock\": \"lk-...\", \"reason\": \"...\"} or "
                 "{\"run_id\": \"...\", \"path\": \"src/\", \"reason\": \"...\"}");
  static const char* kFields[] = {"lock", "run_id", "path", "reason"};
  for (const auto& [k, v] : b->items()) {
    bool known = false;
    for (const char* f : kFields) known = known || k == f;
    if (!known)
      return error(400, "bad_body", "unknown field '" + k + "'; the body takes lock, run_id, path and reason",
                   {{"pointer", "/" + k}});
    if (!v.is_string()) return error(400, "bad_body", "'" + k + "' must be a string", {{"pointer", "/" + k}});
  }
  control::LockReleaseAsk ask;
  ask.lock_id = string_field(*b, "lock");
  ask.run_id = string_field(*b, "run_id");
  ask.path = string_field(*b, "path");
  ask.reason = string_field(*b, "reason");
  control::LockReleaseResult r;
  try {
    r = control::force_release_locks(s.cfg.root, s.queue.backend(), ask,
                                     control::token_holder(c.who.token_id, "human", ask.reason));
  } catch (const std::exception& e) {
    return error(500, "audit_failed",
                 std::string("the locks were released, but the release could not be recorded: ") + e.what());
  }
  using O = control::LockReleaseResult::Outcome;
  switch (r.outcome) {
    case O::invalid:
      return error(400, "bad_body", r.message, {{"pointer", r.pointer}});
    case O::reason_missing:
      return error(422, "reason_required", r.message, {{"pointer", r.pointer}});
    case O::not_found:
      return error(404, "not_found", r.message + "; see GET /api/locks");
    case O::released:
      break;
  }
  // A waiting item may start now rather than at the scheduler's next look.
  if (s.scheduler) s.scheduler->poke();
  json released = json::array();
  for (const auto& l : r.released) released.push_back(queue::to_json(l));
  return ok_json({{"released", released},
                  {"count", released.size()},
                  {"event", {{"type", r.event.value("type", "")}, {"seq", r.event.value("seq", 0)}}}});
}

}  // namespace

std::vector<Route> locks_routes() {
  return {
      {{"GET", "/api/locks", Role::viewer}, list_locks},
      {{"POST", "/api/locks/release", Role::admin}, release},
  };
}

}  // namespace cp::serve
