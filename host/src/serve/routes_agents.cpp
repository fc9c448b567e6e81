// Agents and roles: the runners and the role registry, what the agents of the live runs are doing, and a
// role's config (read, preview a change, apply it). The work is control's (agents_overview, live_runs,
// role_config_service), which `cp-host agents` and `cp-host roles` call too.
#include "control/actor.hpp"
#include "control/agents_overview.hpp"
#include "control/live_runs.hpp"
#include "control/role_config_service.hpp"
#include "core/json_depth.hpp"
#include "queue/queue_service.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

#include <map>
#include <memory>
#include <mutex>

namespace cp::serve {

using nlohmann::json;

namespace {

// One LiveRuns per runtime root for the life of the process: what it has read of each run's events is
// kept between requests, so a poll reads only the events written since the last one.
control::LiveRuns& live_runs_of(const std::filesystem::path& root) {
  static std::mutex mu;
  static std::map<std::filesystem::path, std::unique_ptr<control::LiveRuns>> by_root;
  std::lock_guard<std::mutex> g(mu);
  auto& slot = by_root[root];
  if (!slot) slot = std::make_unique<control::LiveRuns>(root);
  return *slot;
}

ApiResponse agents(const ApiServices& s, const RouteCall&) {
  return ok_json(control::agents_overview(s.cfg.root, s.registry));
}

ApiResponse status(const ApiServices& s, const RouteCall&) {
  // What runs reported (paths an agent named) is untrusted text: served redacted.
  json out = live_runs_of(s.cfg.root).snapshot();
  // The path locks each live run holds, from the queue (a run started outside the queue holds none).
  std::map<std::string, json> held;
  const json locks = s.queue.locks();  // kept: a range-for over a member of a temporary would dangle
  for (const auto& l : locks["locks"]) {
    std::string run = l.value("run_id", "");
    if (!run.empty()) held[run].push_back(l);
  }
  for (auto& r : out["runs"]) {
    auto it = held.find(r.value("run_id", ""));
    r["held_locks"] = it == held.end() ? json::array() : it->second;
  }
  return ok_view(std::move(out));
}

std::optional<std::string> role_of(const RouteCall& c, ApiResponse& refused) {
  std::string role = c.param("role");
  if (control::valid_role_name(role)) return role;
  refused = error(400, "bad_role", "'" + role + "' is not a role name: [A-Z][A-Z_]*, at most 64 characters",
                  {{"parameter", "role"}});
  return std::nullopt;
}

ApiResponse role_config(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto role = role_of(c, refused);
  if (!role) return refused;
  auto view = control::role_view(s.cfg.root, *role, true);
  if (!view)
    return error(404, "not_found",
                 "no role " + *role +
                     " in policies/role_registry.json or policies/role_config.json; GET "
                     "/api/agents lists the roles");
  return ok_json(*view);
}

json problems_json(const std::vector<control::RoleConfigProblem>& problems) {
  json out = json::array();
  for (const auto& p : problems)
    out.push_back(
        {{"pointer", p.pointer}, {"rule", p.rule}, {"message", p.message}, {"expected", p.expected}});
  return out;
}

// The request's change, or the answer refusing it: 400 for what is not JSON, 422 for a body of the wrong
// shape (each problem with its pointer).
std::optional<control::RoleChange> change_of(const RouteCall& c, ApiResponse& refused) {
  const std::string& text = c.req.body;
  if (text.empty() || !core::json_depth_ok(text)) {
    refused = error(400, "bad_body",
                    "the body must be a JSON object: {\"config\": {...}, \"prompt\"?, \"base_sha256\"?, "
                    "\"reason\"?}");
    return std::nullopt;
  }
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    refused = error(400, "bad_body", "the body is not a JSON object");
    return std::nullopt;
  }
  std::vector<control::RoleConfigProblem> problems;
  auto change = control::parse_role_change(body, problems);
  if (!change)
    refused = error(422, "invalid", "the request is not a role config change: " + problems.front().message,
                    {{"problems", problems_json(problems)}});
  return change;
}

ApiResponse answer(const control::RoleConfigResult& r) {
  using O = control::RoleConfigResult::Outcome;
  json details = control::to_json(r);
  switch (r.outcome) {
    case O::previewed:
    case O::applied:
    case O::unchanged:
      return ok_json(details);
    case O::invalid:
      return error(422, "invalid",
                   r.message + (r.problems.empty()
                                    ? ""
                                    : ": first at " +
                                          (r.problems.front().pointer.empty() ? std::string("(body)")
                                                                              : r.problems.front().pointer) +
                                          ": " + r.problems.front().message),
                   details);
    case O::not_found:
      return error(404, "not_found", r.message);
    case O::conflict:
      return error(409, "conflict", r.message, details);
    case O::too_large:
      return error(413, "prompt_too_large", r.message, details);
    case O::from_run:
      return error(403, "from_run", r.message);
    case O::error:
      break;
  }
  return error(500, "internal", r.message);
}

ApiResponse preview(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto role = role_of(c, refused);
  if (!role) return refused;
  auto change = change_of(c, refused);
  if (!change) return refused;
  return answer(control::preview_role_config(s.cfg.root, s.registry, *role, *change));
}

ApiResponse apply(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto role = role_of(c, refused);
  if (!role) return refused;
  auto change = change_of(c, refused);
  if (!change) return refused;
  return answer(control::apply_role_config(s.cfg.root, s.registry, *role, *change,
                                           control::token_holder(c.caller(), "human", change->reason)));
}

}  // namespace

std::vector<Route> agents_routes() {
  return {
      {{"GET", "/api/agents", Role::viewer}, agents},
      {{"GET", "/api/agents/status", Role::viewer}, status},
      {{"GET", "/api/agents/roles/{role}/config", Role::viewer}, role_config},
      {{"POST", "/api/agents/roles/{role}/config/preview", Role::operator_}, preview},
      {{"POST", "/api/agents/roles/{role}/config/apply", Role::admin}, apply},
  };
}

}  // namespace cp::serve
