// The API's route table. Each resource's file (routes_runs.cpp, routes_queue.cpp, ...) declares its routes
// next to their handlers: method, OpenAPI path template, least role, handler. Api::handle looks a request
// up in the table (api.cpp); docs/openapi.json must list exactly these routes (tests/unit/api_routes_test).
#pragma once

#include "serve/api.hpp"
#include "serve/run_catalog.hpp"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cp::serve {

// What a handler may use: the Api's configuration and services.
struct ApiServices {
  const ApiConfig& cfg;
  RunCatalog& runs;
  queue::QueueService& queue;
  Scheduler* scheduler;  // null: no scheduler (serve --no-scheduler)
  const plugin::Registry* registry;
  Metrics& metrics;
  VerifyCache& verified;
  SealedAnswers& answered;  // sealed runs' answers kept serialized (serve/sealed_answers.hpp)
  AnswerMemo& listed;       // list pages kept serialized for one catalogue generation
  SessionStore& sessions;
  EventFeed& feed;
  RootDocuments& documents;   // the contracts, packs and policies under the root, validated and cached
  const CommandTower* tower;  // null: no command tower (an Api built without one answers its routes 503)
};

// One admitted request: the route's parameters are decoded, the caller's role is enough.
struct RouteCall {
  const ApiRequest& req;
  const std::map<std::string, std::string>& params;  // {name} of the pattern -> its decoded segment(s)
  const Principal& who;
  const std::string& session;  // the browser session the caller came with ("" for a bearer token)

  std::string query(const std::string& key) const;  // "" when absent
  std::string param(const std::string& key) const;  // "" when absent
  std::string caller() const;                       // the token id, or "anonymous"
};

using RouteHandler = ApiResponse (*)(const ApiServices&, const RouteCall&);

struct Route {
  RouteInfo info;
  RouteHandler handler;
};

// One list per resource, in the order routes are matched.
std::vector<Route> system_routes();       // health, version, openapi.json, plugins, metrics, workers
std::vector<Route> runs_routes();         // list, submit, detail, cancel, compare
std::vector<Route> events_routes();       // a run's events: a page, a live stream
std::vector<Route> evidence_routes();     // a run's reports and artifacts; promote or reject its evidence
std::vector<Route> run_detail_routes();   // a run's contract, all reports, artifact listing, diff
std::vector<Route> run_actions_routes();  // verify, replay, re-queue (and its preview), rollback
std::vector<Route> approvals_routes();    // pending approvals; approve, reject, god-mode approve
std::vector<Route> workflows_routes();    // workflow cases
std::vector<Route> intake_routes();       // intake previews (the execution plan of a contract)
std::vector<Route> queue_routes();        // queue items
std::vector<Route> session_routes();      // browser sessions: a bearer token for a cookie, and back
std::vector<Route> views_routes();        // contracts, policies, kept worktrees, a gate's results across runs
std::vector<Route> locks_routes();        // path locks: list, forced release
std::vector<Route> agents_routes();       // runners and roles, live agents, a role's config
std::vector<Route> tower_routes();        // the command tower: overview and alerts across runs and the queue
std::vector<Route> retention_routes();    // retention: the plan by lane, an admin's apply
std::vector<Route> chains_routes();       // chain executions: the list, one step by step
std::vector<Route> probes_routes();       // probe plugins' capability answers, plugins the registry refused
std::vector<Route> task_packs_routes();   // task packs: the kinds of job the planners know, their fields

// Every route, built once from the lists above.
const std::vector<Route>& route_table();

// Matches `path` against a pattern; fills params. {path} as the last pattern segment takes the rest.
bool match_route(const std::string& pattern, const std::string& path,
                 std::map<std::string, std::string>& params);

// The bundle of the run named by the route's {id}, or the refusal: 400 for what is not a run id, 404 when
// there is no such run.
struct RunRef {
  std::string id;
  std::filesystem::path dir;
};
std::optional<RunRef> run_of(const ApiServices& s, const RouteCall& c, ApiResponse& refused);
// The {id} when it is a valid run id, else nullopt with the 400 in `refused`.
std::optional<std::string> run_id_of(const RouteCall& c, ApiResponse& refused);

// A page of the catalogue's runs matching `f`, by the request's limit and cursor; nullopt with the 400 in
// `refused` for a bad filter, limit or cursor. GET /api/runs and GET /api/chains both list this way.
std::optional<RunPage> run_page(const ApiServices& s, const RouteCall& c, const RunFilter& f,
                                ApiResponse& refused);

}  // namespace cp::serve
