// Actions on one run: verify its bundle now, queue a replay of it, queue its contract again (or preview
// that), and roll it back. The control layer does the work (control/run_requeue.hpp,
// control/run_rollback.hpp), exactly as `cp-host queue replay|from-run` and `cp-host runs rollback` do.
#include "control/actor.hpp"
#include "control/run_requeue.hpp"
#include "control/run_rollback.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"
#include "serve/scheduler.hpp"
#include "store/bundle_verify.hpp"
#include "store/host_key.hpp"

#include <set>

namespace cp::serve {

using control::RequeueMode;
using control::RequeueResult;
using nlohmann::json;

namespace {

// A full verification now, as `cp-host runs verify --json` says it (the run detail's verification is
// cached while the bundle does not change; this one reads every file again).
ApiResponse verify(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  if (!object_body(c.req.body)) return error(400, "bad_body", "the body, when given, must be a JSON object");
  store::KeyRing keys;
  try {
    keys = store::KeyRing::of_dir(store::key_dir());
  } catch (const store::KeyError&) {
    // No usable key: the check then says the seal is signed by no trusted key.
  }
  return ok_view(store::check_json(run->id, store::verify_settled(run->dir, keys)));
}

// The options of a replay or a re-queue ({"repo", "priority", "depends_on", "run_after", "deadline",
// "start_by"}, all optional) into `req`; the refusal otherwise, with the pointer of what is wrong.
std::optional<ApiResponse> read_requeue_body(const ApiServices& s, const RouteCall& c,
                                             control::RequeueRequest& req) {
  auto b = object_body(c.req.body);
  if (!b)
    return error(400, "bad_body", "the body, when given, must be a JSON object such as {\"priority\": 7}");
  static const std::set<std::string> kKnown{"repo",      "priority", "depends_on",
                                            "run_after", "deadline", "start_by"};
  for (const auto& [k, v] : b->items())
    if (!kKnown.count(k))
      return error(
          422, "invalid",
          "/" + k +
              ": unknown field; the body takes repo, priority, depends_on, run_after, deadline, start_by",
          json{{"pointer", "/" + k}});
  auto bad = [](const std::string& k, const std::string& want) {
    return error(422, "invalid", "/" + k + " must be " + want, json{{"pointer", "/" + k}});
  };
  for (const char* k : {"repo", "run_after", "deadline", "start_by"})
    if (b->contains(k) && !(*b)[k].is_string()) return bad(k, "a string");
  if (b->contains("priority")) {
    const json& p = (*b)["priority"];
    if (!p.is_number_integer() || p.get<long long>() < 0 || p.get<long long>() > 9)
      return bad("priority", "an integer from 0 to 9");
    req.priority = p.get<int>();
  }
  if (b->contains("depends_on")) {
    const json& d = (*b)["depends_on"];
    if (!d.is_array()) return bad("depends_on", "an array of queue item ids");
    for (const auto& x : d) {
      if (!x.is_string()) return bad("depends_on", "an array of queue item ids");
      req.depends_on.push_back(x.get<std::string>());
    }
  }
  req.repo = string_field(*b, "repo");
  req.run_after = string_field(*b, "run_after");
  req.deadline = string_field(*b, "deadline");
  req.start_by = string_field(*b, "start_by");
  req.submitted_by = c.caller();
  req.allowed_repos = s.cfg.allowed_repos;
  return std::nullopt;
}

ApiResponse requeue_response(const RequeueResult& r) {
  using O = RequeueResult::Outcome;
  switch (r.outcome) {
    case O::queued: {
      ApiResponse a = ok_json(r.body, 202);
      a.headers.emplace_back("Location", "/api/queue/" + r.body.value("item_id", ""));
      return a;
    }
    case O::previewed:
      return ok_view(r.body);
    case O::not_found:
      return error(404, "not_found", r.message);
    case O::unverified:
      return error(409, "unverified", r.message);
    case O::refused:
      return error(409, "refused", r.message);
    case O::conflict:
      return error(409, "conflict", r.message);
    case O::invalid:
      return error(422, "invalid", r.message);
    case O::repo_not_allowed:
      return error(422, "repo_not_allowed", r.message, json{{"pointer", "/repo"}});
    case O::error:
      break;
  }
  return error(500, "internal", r.message);
}

ApiResponse requeue(const ApiServices& s, const RouteCall& c, RequeueMode mode, bool preview) {
  ApiResponse refused;
  auto id = run_id_of(c, refused);
  if (!id) return refused;
  control::RequeueRequest req;
  req.run_id = *id;
  req.mode = mode;
  if (auto no = read_requeue_body(s, c, req)) return *no;
  if (preview) return requeue_response(control::preview_requeue(s.cfg.root, s.cfg.plugins_dir, req));
  RequeueResult r = control::requeue_run(s.queue, s.cfg.root, req);
  if (r.outcome == RequeueResult::Outcome::queued && s.scheduler) s.scheduler->poke();
  return requeue_response(r);
}

ApiResponse replay(const ApiServices& s, const RouteCall& c) {
  return requeue(s, c, RequeueMode::replay, false);
}

ApiResponse from_run(const ApiServices& s, const RouteCall& c) {
  return requeue(s, c, RequeueMode::from_run, false);
}

ApiResponse from_run_preview(const ApiServices& s, const RouteCall& c) {
  return requeue(s, c, RequeueMode::from_run, true);
}

ApiResponse rollback(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  auto b = object_body(c.req.body);
  if (!b) return error(400, "bad_body", "the body must be a JSON object such as {\"reason\": \"...\"}");
  if (b->contains("reason") && !(*b)["reason"].is_string())
    return error(422, "invalid", "/reason must be a string", json{{"pointer", "/reason"}});
  auto actor = control::token_holder(c.who.token_id, "human", string_field(*b, "reason"));
  using O = control::RollbackResult::Outcome;
  control::RollbackResult r = control::rollback_run(s.cfg.root, run->id, actor);
  s.runs.update(run->id);
  switch (r.outcome) {
    case O::rolled_back:
      return ok_json({{"outcome", "rolled_back"}, {"message", r.message}, {"rollback", r.rollback}});
    case O::refused:
      return error(409, r.code, r.message);
    case O::unverified:
      return error(409, "unverified", r.message);
    case O::not_found:
      return error(404, "not_found", r.message);
    case O::invalid:
      return error(422, "invalid", "/reason: " + r.message, json{{"pointer", "/reason"}});
    case O::from_run:
      // This server runs inside a run's process tree: no token may roll back through it.
      return error(403, "from_run", r.message);
    case O::error:
      break;
  }
  return error(500, "internal", r.message);
}

}  // namespace

std::vector<Route> run_actions_routes() {
  return {
      {{"POST", "/api/runs/{id}/verify", Role::operator_}, verify},
      {{"POST", "/api/runs/{id}/replay", Role::operator_}, replay},
      {{"POST", "/api/runs/{id}/rollback", Role::operator_}, rollback},
      {{"POST", "/api/queue/from-run/{id}", Role::operator_}, from_run},
      {{"POST", "/api/queue/from-run/{id}/preview", Role::operator_}, from_run_preview},
  };
}

}  // namespace cp::serve
