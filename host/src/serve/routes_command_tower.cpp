// The command tower: an overview of runs, queue and approvals, and the alerts that hold now. Both are read
// from the aggregate the server keeps up to date (serve/command_tower.hpp), never from the bundles.
#include "core/clock.hpp"
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

}  // namespace

std::vector<Route> tower_routes() {
  return {
      {{"GET", "/api/command-tower/overview", Role::viewer}, overview},
      {{"GET", "/api/command-tower/alerts", Role::viewer}, alerts},
  };
}

}  // namespace cp::serve
