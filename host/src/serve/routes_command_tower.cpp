// The command tower: an overview of runs, queue and approvals, and the alerts that hold now. Both are read
// from the aggregate the server keeps up to date (serve/command_tower.hpp), never from the bundles. And its
// sessions: an intake with its chain, its runs' events and metrics (intake/session_view.hpp), read from the
// store on each request.
#include "core/clock.hpp"
#include "intake/session_view.hpp"
#include "serve/api_answers.hpp"
#include "serve/command_tower.hpp"
#include "serve/routes.hpp"

namespace cp::serve {

namespace {

ApiResponse no_tower() {
  return error(503, "no_command_tower",
               "this server keeps no command tower state; it is built by `cp-host serve`");
}

// Task ids and run ids come from manifests: the answers are redacted like every view built from them.
ApiResponse overview(const ApiServices& s, const RouteCall&) {
  if (!s.tower) return no_tower();
  return ok_view(s.tower->overview(core::now_ms()));
}

ApiResponse alerts(const ApiServices& s, const RouteCall&) {
  if (!s.tower) return no_tower();
  return ok_view(s.tower->alerts(core::now_ms()));
}

ApiResponse sessions(const ApiServices& s, const RouteCall&) {
  return ok_view(intake::session_summaries(s.cfg.root));
}

ApiResponse session(const ApiServices& s, const RouteCall& c) {
  size_t per_run = 200;
  if (!c.query("events").empty()) {
    auto n = strict_uint(c.query("events"), 0, 2000);
    if (!n) return bad_number("events", c.query("events"), "an integer from 0 to 2000");
    per_run = static_cast<size_t>(*n);
  }
  auto d = intake::session_detail(s.cfg.root, c.param("id"), per_run);
  if (!d) return error(404, "not_found", "no intake session '" + c.param("id") + "'");
  return ok_view(std::move(*d));
}

}  // namespace

std::vector<Route> tower_routes() {
  return {
      {{"GET", "/api/command-tower/overview", Role::viewer}, overview},
      {{"GET", "/api/command-tower/alerts", Role::viewer}, alerts},
      {{"GET", "/api/command-tower/sessions", Role::viewer}, sessions},
      {{"GET", "/api/command-tower/sessions/{id}", Role::viewer}, session},
  };
}

}  // namespace cp::serve
