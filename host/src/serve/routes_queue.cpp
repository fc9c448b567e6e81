// The queue: its items (optionally by state), one item, and what an operator does to a waiting item:
// cancel it, change its priority. Both go through the QueueService `cp-host queue cancel|priority` uses.
// Submissions are POST /api/runs (routes_runs.cpp); POST /api/runs/{id}/cancel also takes a run's id.
#include "queue/queue_service.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/scheduler.hpp"

#include <nlohmann/json.hpp>

namespace cp::serve {

using nlohmann::json;

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

// The body of an item action: empty or a JSON object whose fields are all in `fields` (name -> check);
// the refusal otherwise, naming the field by its pointer.
std::optional<ApiResponse> refuse_fields(const std::optional<json>& body,
                                         std::initializer_list<const char*> fields, const char* shape) {
  if (!body) return error(400, "bad_body", std::string("the body must be a JSON object: ") + shape);
  for (const auto& item : body->items()) {
    // A named string, not a structured binding: clang 14 cannot capture a binding in a lambda.
    const std::string& k = item.key();
    if (std::find_if(fields.begin(), fields.end(), [&](const char* f) { return k == f; }) == fields.end())
      return error(422, "invalid", "/" + k + ": unknown field; the body is " + shape, {{"pointer", "/" + k}});
  }
  return std::nullopt;
}

ApiResponse cancel_item(const ApiServices& s, const RouteCall& c) {
  const std::string id = c.param("item_id");
  auto body = object_body(c.req.body);
  if (auto refused = refuse_fields(body, {"reason"}, "{\"reason\": \"...\"} (optional)")) return *refused;
  std::string why = "cancelled through the API";
  if (body->contains("reason")) {
    const json& r = (*body)["reason"];
    if (!r.is_string() || r.get<std::string>().empty() || r.get<std::string>().size() > 1000)
      return error(422, "invalid", "/reason must be a string of 1 to 1000 characters",
                   {{"pointer", "/reason"}});
    why = r.get<std::string>();
  }
  auto out = s.queue.cancel(id, c.caller(), why);
  if (out == queue::CancelOutcome::not_found)
    return error(404, "not_found", "no queue item " + id + "; see GET /api/queue");
  if (out == queue::CancelOutcome::already_ended)
    return error(409, "already_ended", "item " + id + " has already ended; there is nothing to cancel");
  if (s.scheduler) s.scheduler->poke();
  return ok_json({{"item_id", id},
                  {"outcome", out == queue::CancelOutcome::cancelled ? "cancelled" : "cancel_requested"}},
                 202);
}

ApiResponse set_priority(const ApiServices& s, const RouteCall& c) {
  const std::string id = c.param("item_id");
  auto body = object_body(c.req.body);
  if (auto refused = refuse_fields(body, {"priority"}, "{\"priority\": N} with N from 0 to 9"))
    return *refused;
  const json* p = body->contains("priority") ? &(*body)["priority"] : nullptr;
  if (!p || !p->is_number_integer() || p->get<long long>() < queue::QueueService::kMinPriority ||
      p->get<long long>() > queue::QueueService::kMaxPriority)
    return error(422, "invalid", "/priority must be an integer from 0 to 9 (higher runs first)",
                 {{"pointer", "/priority"}});
  int priority = p->get<int>();
  auto change = s.queue.set_priority(id, priority, c.caller());
  if (change == queue::Change::not_found)
    return error(404, "not_found", "no queue item " + id + "; see GET /api/queue");
  auto item = s.queue.get(id);
  if (change == queue::Change::refused)
    return error(409, "not_waiting",
                 "item " + id + " is " + (item ? item->value("state", "") : std::string("not waiting")) +
                     "; only a waiting (queued) item's priority can change",
                 {{"state", item ? item->value("state", "") : std::string()}});
  if (change == queue::Change::applied && s.scheduler) s.scheduler->poke();
  if (!item) return error(404, "not_found", "no queue item " + id + " (compacted meanwhile)");
  return ok_json({{"item_id", id}, {"changed", change == queue::Change::applied}, {"item", *item}});
}

}  // namespace

std::vector<Route> queue_routes() {
  return {
      {{"GET", "/api/queue", Role::viewer}, list_items},
      {{"GET", "/api/queue/{item_id}", Role::viewer}, one_item},
      {{"POST", "/api/queue/{item_id}/cancel", Role::operator_}, cancel_item},
      {{"POST", "/api/queue/{item_id}/priority", Role::operator_}, set_priority},
  };
}

}  // namespace cp::serve
