// The Api: a request is looked up in the route table (routes.hpp; each resource's routes_*.cpp declares
// its routes next to their handlers), admitted (the caller's token and role), then handed to the handler.
#include "serve/api.hpp"

#include "serve/api_answers.hpp"
#include "serve/openapi.hpp"
#include "serve/routes.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <set>

namespace cp::serve {

std::string RouteCall::query(const std::string& key) const {
  auto it = req.query.find(key);
  return it == req.query.end() ? std::string() : it->second;
}

std::string RouteCall::param(const std::string& key) const {
  auto it = params.find(key);
  return it == params.end() ? std::string() : it->second;
}

std::string RouteCall::caller() const {
  return who.token_id.empty() ? "anonymous" : who.token_id;
}

std::optional<std::string> run_id_of(const RouteCall& c, ApiResponse& refused) {
  std::string id = c.param("id");
  if (store::valid_run_id(id)) return id;
  refused = error(400, "bad_id", "'" + id + "' is not a run id (letters, digits, '.', '_', '-')");
  return std::nullopt;
}

std::optional<RunRef> run_of(const ApiServices& s, const RouteCall& c, ApiResponse& refused) {
  auto id = run_id_of(c, refused);
  if (!id) return std::nullopt;
  auto dir = store::find_run(s.cfg.root, *id);
  if (!dir) {
    refused = error(404, "not_found", "no run " + *id);
    return std::nullopt;
  }
  return RunRef{*id, *dir};
}

const std::vector<Route>& route_table() {
  static const std::vector<Route> table = [] {
    std::vector<Route> all;
    for (auto part : {system_routes, runs_routes, events_routes, evidence_routes, approvals_routes,
                      workflows_routes, intake_routes, queue_routes, tower_routes})
      for (auto& r : part()) all.push_back(r);
    return all;
  }();
  return table;
}

const std::vector<RouteInfo>& Api::routes() {
  static const std::vector<RouteInfo> infos = [] {
    std::vector<RouteInfo> out;
    for (const auto& r : route_table()) out.push_back(r.info);
    return out;
  }();
  return infos;
}

struct Api::Ctx {
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
  Principal who;
};

namespace {

// The answer to a request no route takes: 404 for an unknown path, 405 (with Allow) for a known path asked
// with another method.
ApiResponse unmatched(const ApiRequest& req, const std::vector<std::string>& allowed) {
  ApiResponse r = allowed.empty()
                      ? error(404, "no_route", "no API route " + req.path + "; see GET /api/openapi.json")
                      : error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
  if (!allowed.empty()) {
    std::string a;
    for (const auto& m : allowed) a += (a.empty() ? "" : ", ") + m;
    r.headers.emplace_back("Allow", a);
  }
  r.route = "unmatched";
  return r;
}

// The query parameters each route accepts: the ones docs/openapi.json declares for it, so the document and
// the check cannot drift apart. Built once from the compiled-in document.
const std::set<std::string>& declared_query(const RouteInfo& info) {
  static const std::map<std::pair<std::string, std::string>, std::set<std::string>> table = [] {
    std::map<std::pair<std::string, std::string>, std::set<std::string>> t;
    auto doc = nlohmann::json::parse(openapi_document(), nullptr, false);
    if (!doc.is_object() || !doc["paths"].is_object()) return t;
    for (const auto& [path, item] : doc["paths"].items())
      for (const auto& [method, op] : item.items()) {
        std::string up = method;
        for (auto& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        auto& names = t[{up, path}];
        if (!op.is_object() || !op.contains("parameters")) continue;
        for (const auto& p : op["parameters"])
          if (p.value("in", "") == "query") names.insert(p.value("name", ""));
      }
    return t;
  }();
  static const std::set<std::string> none;
  auto it = table.find({info.method, info.pattern});
  return it == table.end() ? none : it->second;
}

// 400 naming the first query parameter the route does not take: a misspelt filter must not be ignored
// silently (the caller would read an unfiltered answer as a filtered one).
std::optional<ApiResponse> unknown_query(const ApiRequest& req, const RouteInfo& info) {
  const auto& names = declared_query(info);
  for (const auto& [k, v] : req.query) {
    if (names.count(k)) continue;
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return error(400, "bad_query",
                 "unknown query parameter '" + k + "' for " + req.method + " " + info.pattern +
                     (known.empty() ? "; it takes none" : "; it takes: " + known),
                 {{"parameter", k}});
  }
  return std::nullopt;
}

}  // namespace

Api::Api(ApiConfig cfg, const TokenStore& tokens, RunCatalog& runs, queue::QueueService& queue,
         Scheduler* scheduler, const plugin::Registry* registry, Metrics& metrics, const CommandTower* tower)
    : cfg_(std::move(cfg)),
      tokens_(tokens),
      runs_(runs),
      queue_(queue),
      scheduler_(scheduler),
      registry_(registry),
      metrics_(metrics),
      tower_(tower) {}

std::optional<ApiResponse> Api::refusal(const ApiRequest& req) const {
  Ctx ctx;
  return admit(req, ctx);
}

ApiResponse Api::handle(const ApiRequest& req) const {
  Ctx ctx;
  if (auto refused = admit(req, ctx)) return *refused;
  ApiResponse r;
  try {
    r = dispatch(req, ctx);
  } catch (const std::exception& e) {
    r = error(500, "internal", e.what());
  }
  r.route = ctx.route->info.pattern;
  r.token_id = ctx.who.token_id;
  return r;
}

std::optional<ApiResponse> Api::admit(const ApiRequest& req, Ctx& ctx) const {
  // Route first: an unknown path is 404 whoever asks; a known path with another method is 405.
  std::vector<std::string> allowed;
  for (const auto& r : route_table()) {
    std::map<std::string, std::string> params;
    if (!match_route(r.info.pattern, req.path, params)) continue;
    if (r.info.method == req.method) {
      ctx.route = &r;
      ctx.params = std::move(params);
      break;
    }
    allowed.push_back(r.info.method);
  }
  if (!ctx.route) return unmatched(req, allowed);
  if (auto refused = unknown_query(req, ctx.route->info)) {
    refused->route = ctx.route->info.pattern;
    return refused;
  }
  for (auto& [k, v] : ctx.params) {
    auto d = url_decode(v);
    if (!d) {
      ApiResponse r = error(400, "bad_path", "malformed percent-escape in " + req.path);
      r.route = ctx.route->info.pattern;
      return r;
    }
    v = *d;
  }
  return authorise(req, ctx);
}

std::optional<ApiResponse> Api::authorise(const ApiRequest& req, Ctx& ctx) const {
  const std::string pattern = ctx.route->info.pattern;
  // Who is asking.
  auto auth = req.headers.find("authorization");
  if (auth != req.headers.end()) {
    const std::string& h = auth->second;
    std::optional<Principal> p;
    if (h.size() > 7 && (h.compare(0, 7, "Bearer ") == 0 || h.compare(0, 7, "bearer ") == 0))
      p = tokens_.authenticate(std::string_view(h).substr(7));
    if (!p) {
      ApiResponse r = error(401, "unauthorized", "the bearer token is not valid");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cp-host\", error=\"invalid_token\"");
      r.route = pattern;
      return r;
    }
    ctx.who = *p;
  }
  Role need = ctx.route->info.role;
  bool anonymous_ok = need == Role::none || (need == Role::viewer && cfg_.open_reads);
  if (ctx.who.role == Role::none && !anonymous_ok) {
    ApiResponse r =
        error(401, "unauthorized",
              "this route needs a bearer token (Authorization: Bearer <token>) with role " +
                  std::string(role_name(need)) + " or above; tokens come from `cp-host tokens add`");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cp-host\"");
    r.route = pattern;
    return r;
  }
  if (ctx.who.role != Role::none && ctx.who.role < need) {
    ApiResponse r = error(403, "forbidden",
                          "token '" + ctx.who.token_id + "' has role " + role_name(ctx.who.role) + "; " +
                              req.method + " " + pattern + " needs " + role_name(need));
    r.route = pattern;
    r.token_id = ctx.who.token_id;
    return r;
  }
  return std::nullopt;
}

ApiResponse Api::dispatch(const ApiRequest& req, Ctx& ctx) const {
  const ApiServices services{cfg_, runs_, queue_, scheduler_, registry_, metrics_, verified_, tower_};
  return ctx.route->handler(services, RouteCall{req, ctx.params, ctx.who});
}

}  // namespace cp::serve
