// The queue: its items (optionally by state) and one item. Submissions are POST /api/runs
// (routes_runs.cpp), cancels POST /api/runs/{id}/cancel.
#include "queue/queue_service.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

namespace cp::serve {

namespace {

ApiResponse list_items(const ApiServices& s, const RouteCall& c) {
  queue::ListFilter f;
  f.state = c.query("state");
  return ok_json(s.queue.list(f));
}

ApiResponse one_item(const ApiServices& s, const RouteCall& c) {
  auto item = s.queue.get(c.param("item_id"));
  if (!item) return error(404, "not_found", "no queue item " + c.param("item_id"));
  return ok_json(*item);
}

}  // namespace

std::vector<Route> queue_routes() {
  return {
      {{"GET", "/api/queue", Role::viewer}, list_items},
      {{"GET", "/api/queue/{item_id}", Role::viewer}, one_item},
  };
}

}  // namespace cp::serve
