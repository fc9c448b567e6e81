// Workflow cases (case.json): the list and one case.
#include "control/workflow_cases.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

namespace cp::serve {

using nlohmann::json;

namespace {

ApiResponse list_cases(const ApiServices& s, const RouteCall&) {
  json all = control::list_workflow_cases(s.cfg.root);
  return ok_view({{"workflows", all}, {"count", all.size()}});
}

ApiResponse one_case(const ApiServices& s, const RouteCall& c) {
  auto found = control::read_workflow_case(s.cfg.root, c.param("workflow_id"));
  if (!found) return error(404, "not_found", "no workflow case " + c.param("workflow_id"));
  return ok_view(std::move(*found));
}

}  // namespace

std::vector<Route> workflows_routes() {
  return {
      {{"GET", "/api/workflows", Role::viewer}, list_cases},
      {{"GET", "/api/workflows/{workflow_id}", Role::viewer}, one_case},
  };
}

}  // namespace cp::serve
