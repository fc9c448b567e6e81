// Approvals: the runs awaiting a decision, and the decisions (approve, reject, an admin's god-mode approve).
#include "control/actor.hpp"
#include "control/approvals.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"

namespace cp::serve {

using nlohmann::json;

namespace {

ApiResponse pending(const ApiServices& s, const RouteCall&) {
  json all = control::list_pending(s.cfg.root);
  return ok_view({{"approvals", all}, {"count", all.size()}});
}

ApiResponse decide(const ApiServices& s, const RouteCall& c, control::Decision decision, bool god) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  auto b = object_body(c.req.body);
  if (!b)
    return error(400, "bad_body",
                 "the body, when given, must be a JSON object such as {\"reason\": \"...\"}");
  auto actor = control::token_holder(c.who.token_id, god ? "god_mode" : "human", string_field(*b, "reason"));
  auto r = control::decide(s.cfg.root, run->id, decision, actor);
  s.runs.update(run->id);
  return decision_response(r);
}

ApiResponse approve(const ApiServices& s, const RouteCall& c) {
  return decide(s, c, control::Decision::approve, false);
}

ApiResponse reject_run(const ApiServices& s, const RouteCall& c) {
  return decide(s, c, control::Decision::reject, false);
}

ApiResponse god_mode_approve(const ApiServices& s, const RouteCall& c) {
  return decide(s, c, control::Decision::approve, true);
}

}  // namespace

std::vector<Route> approvals_routes() {
  return {
      {{"GET", "/api/approvals", Role::viewer}, pending},
      {{"POST", "/api/runs/{id}/approve", Role::operator_}, approve},
      {{"POST", "/api/runs/{id}/reject", Role::operator_}, reject_run},
      {{"POST", "/api/runs/{id}/god-mode-approve", Role::admin}, god_mode_approve},
  };
}

}  // namespace cp::serve
