// The Api: a request is looked up in the route table (routes.hpp; each resource's routes_*.cpp declares
// its routes next to their handlers), admitted (the caller's token and role), then handed to the handler.
#include "serve/api.hpp"

#include "serve/api_answers.hpp"
#include "serve/event_feed.hpp"
#include "serve/openapi.hpp"
#include "serve/routes.hpp"
#include "serve/ui_assets.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
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
    for (auto part :
         {system_routes, runs_routes, events_routes, evidence_routes, run_detail_routes, run_actions_routes,
          approvals_routes, workflows_routes, intake_routes, queue_routes, session_routes, views_routes,
          locks_routes, agents_routes, tower_routes, retention_routes, chains_routes, probes_routes})
      for (auto& r : part()) all.push_back(r);
    for (auto& r : task_packs_routes()) all.push_back(r);
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
  std::string session;  // the session cookie's value when the caller came with one
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
      tower_(tower),
      feed_(std::make_unique<EventFeed>(cfg_.root, runs_)) {}

Api::~Api() = default;

namespace {

// Every answer of the API, whatever it holds: never sniffed as another type, never framed, and shown (a
// run's artifact or report opened in a tab) as an inert document that runs nothing. A run writes those
// files; served as text/plain or octet-stream without nosniff, a page of this origin could load one as a
// script, which the dashboard's own policy (script-src 'self') allows. The dashboard's files set theirs.
void lock_down(ApiResponse& r) {
  if (r.route == "ui") return;
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox");
}

}  // namespace

std::optional<ApiResponse> Api::refusal(const ApiRequest& req) const {
  if (req.method == "OPTIONS") {
    auto r = preflight(req);
    lock_down(r);
    return r;
  }
  Ctx ctx;
  auto r = admit(req, ctx);
  if (r) {
    allow_origin(req, *r);
    lock_down(*r);
  }
  return r;
}

ApiResponse Api::handle(const ApiRequest& req) const {
  if (req.method == "OPTIONS") {
    auto r = preflight(req);
    lock_down(r);
    return r;
  }
  Ctx ctx;
  ApiResponse r;
  if (auto refused = admit(req, ctx)) {
    r = std::move(*refused);
  } else {
    try {
      r = dispatch(req, ctx);
    } catch (const std::exception& e) {
      r = error(500, "internal", e.what());
    }
    r.route = ctx.route->info.pattern;
    r.token_id = ctx.who.token_id;
    // A stream opened with a session lasts only as long as the session: logging out (or its expiry) ends
    // it, as it ends every other request the cookie could make.
    if (r.sse && !ctx.session.empty())
      r.sse->live = [this, id = ctx.session] {
        SessionStore::Lookup why;
        return sessions_.find(id, why).has_value();
      };
  }
  allow_origin(req, r);
  lock_down(r);
  return r;
}

namespace {

std::string header_of(const ApiRequest& req, const char* name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? std::string() : it->second;
}

bool listed_origin(const ApiConfig& cfg, const std::string& origin) {
  return !origin.empty() &&
         std::find(cfg.cors_origins.begin(), cfg.cors_origins.end(), origin) != cfg.cors_origins.end();
}

}  // namespace

// CORS for the origins serve was given (--cors-origin), and for no other: a listed origin may read the
// answers and send credentials; any other origin gets no CORS header at all, so a browser keeps the
// answer from its page.
void Api::allow_origin(const ApiRequest& req, ApiResponse& r) const {
  std::string origin = header_of(req, "origin");
  if (!listed_origin(cfg_, origin)) return;
  r.headers.emplace_back("Access-Control-Allow-Origin", origin);
  r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  r.headers.emplace_back("Access-Control-Expose-Headers", "X-Request-Id, X-CP-Redacted, Location");
  r.headers.emplace_back("Vary", "Origin");
}

// A CORS preflight (OPTIONS): answered for a listed origin on a path the API serves, with the methods that
// path takes; refused (403, no CORS headers) for any other origin. No token is asked: browsers send none
// on a preflight.
ApiResponse Api::preflight(const ApiRequest& req) const {
  std::string origin = header_of(req, "origin");
  std::string allowed;
  for (const auto& r : route_table()) {
    std::map<std::string, std::string> params;
    if (match_route(r.info.pattern, req.path, params))
      allowed += (allowed.empty() ? "" : ", ") + std::string(r.info.method);
  }
  ApiResponse r;
  r.route = "preflight";
  if (allowed.empty()) {
    r = error(404, "no_route", "no API route " + req.path + "; see GET /api/openapi.json");
  } else if (origin.empty()) {
    r = error(405, "method_not_allowed", "OPTIONS answers only CORS preflights (with an Origin header)");
    r.headers.emplace_back("Allow", allowed);
  } else if (!listed_origin(cfg_, origin)) {
    r = error(403, "cors_origin_not_allowed",
              "origin " + origin + " may not call this API; start serve with --cors-origin " + origin +
                  " to allow it");
  } else {
    r.status = 204;
    r.content_type = "text/plain";
    r.headers.emplace_back("Access-Control-Allow-Methods", allowed);
    r.headers.emplace_back("Access-Control-Allow-Headers",
                           "Authorization, Content-Type, X-CSRF-Token, Last-Event-ID");
    r.headers.emplace_back("Access-Control-Max-Age", "600");
    allow_origin(req, r);
  }
  r.route = "preflight";
  return r;
}

namespace {

// Whether a Host header names a loopback host: localhost, 127.0.0.0/8 or [::1], with any port.
bool loopback_host(std::string host) {
  if (host.empty()) return true;  // HTTP/1.0 clients send none; browsers always do
  if (host.front() == '[') return host.rfind("[::1]", 0) == 0 && (host.size() == 5 || host[5] == ':');
  host = host.substr(0, host.find(':'));
  for (auto& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (host == "localhost") return true;
  // 127.d.d.d, each d one to three digits (what the pattern 127\.[0-9]{1,3}(\.[0-9]{1,3}){2} says),
  // checked by hand: every request on a loopback server asks.
  if (host.rfind("127.", 0) != 0) return false;
  int parts = 0;
  size_t i = 4;
  while (parts < 3) {
    size_t digits = 0;
    while (i < host.size() && host[i] >= '0' && host[i] <= '9' && digits < 4) ++i, ++digits;
    if (digits == 0 || digits > 3) return false;
    ++parts;
    if (parts == 3) break;
    if (i >= host.size() || host[i] != '.') return false;
    ++i;
  }
  return i == host.size();
}

}  // namespace

std::optional<ApiResponse> Api::admit(const ApiRequest& req, Ctx& ctx) const {
  if (cfg_.loopback_host_only) {
    auto h = req.headers.find("host");
    if (h != req.headers.end() && !loopback_host(h->second)) {
      ApiResponse r =
          error(421, "misdirected",
                "this server listens on loopback and answers only requests naming a loopback host "
                "(127.0.0.1, localhost, [::1]); a page of another name pointed here (DNS "
                "rebinding) is refused");
      r.route = "unmatched";
      return r;
    }
  }
  // The dashboard's files are public (they hold no data: every page asks the API, which checks the
  // caller), so they need no token.
  if (cfg_.ui && UiAssets::owns(req.path)) return cfg_.ui->answer(req);
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

// A caller who came with a session cookie and no bearer token. The session must be live; an unsafe method
// must also carry the session's CSRF token in X-CSRF-Token, equal to the cp_csrf cookie (double submit),
// and come from this server's own origin or a listed one when the browser names an origin: a page on
// another port of the same host is "same-site" to the cookie and can read cp_csrf, but not forge Origin.
std::optional<ApiResponse> Api::session_caller(const ApiRequest& req, const std::string& cookie,
                                               Ctx& ctx) const {
  const std::string pattern = ctx.route->info.pattern;
  auto refuse = [&](int status, const char* code, const std::string& message) {
    ApiResponse r = error(status, code, message);
    r.route = pattern;
    if (status == 401) r.cookies.push_back({kSessionCookie, "", 0, true, cfg_.secure_cookies});
    return r;
  };
  auto ids = cookie_values(cookie, kSessionCookie);
  if (ids.size() > 1)
    return refuse(401, "session_ambiguous", "the request carries more than one cp_session cookie");
  SessionStore::Lookup why;
  auto s = sessions_.find(ids.front(), why);
  if (!s)
    return refuse(401, why == SessionStore::Lookup::expired ? "session_expired" : "session_unknown",
                  std::string(why == SessionStore::Lookup::expired ? "the session has expired"
                                                                   : "the session is not known (serve "
                                                                     "restarted, or it was ended)") +
                      "; exchange a bearer token again with POST /api/session");
  bool safe = req.method == "GET" || req.method == "HEAD";
  if (!safe) {
    auto sent = header_of(req, kCsrfHeader);
    auto cookies = cookie_values(cookie, kCsrfCookie);
    if (sent.empty() || cookies.size() != 1 || !constant_time_equal(sent, cookies.front()) ||
        !constant_time_equal(sent, s->csrf))
      return refuse(403, "csrf",
                    req.method +
                        " with a session cookie needs the session's CSRF token in the X-CSRF-Token "
                        "header (the csrf_token POST /api/session returned; also in the cp_csrf "
                        "cookie)");
    std::string origin = header_of(req, "origin");
    std::string own = (cfg_.secure_cookies ? "https://" : "http://") + header_of(req, "host");
    if (!origin.empty() && origin != own && !listed_origin(cfg_, origin))
      return refuse(403, "cors_origin_not_allowed",
                    "origin " + origin + " may not act with a session; start serve with --cors-origin " +
                        origin + " to allow it");
  }
  ctx.who = s->who;
  ctx.session = ids.front();
  return std::nullopt;
}

std::optional<ApiResponse> Api::authorise(const ApiRequest& req, Ctx& ctx) const {
  const std::string pattern = ctx.route->info.pattern;
  // Who is asking: a bearer token first; else a browser session's cookie.
  auto auth = req.headers.find("authorization");
  std::string cookie = header_of(req, "cookie");
  if (auth == req.headers.end() && !cookie_values(cookie, kSessionCookie).empty()) {
    if (auto refused = session_caller(req, cookie, ctx)) return refused;
  } else if (auth != req.headers.end()) {
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
  // --open-reads opens reads only: a viewer route that changes something (a session) still needs a token.
  bool safe = req.method == "GET" || req.method == "HEAD";
  bool anonymous_ok = need == Role::none || (need == Role::viewer && cfg_.open_reads && safe);
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
  const ApiServices services{cfg_,      runs_,   queue_,    scheduler_, registry_,  metrics_, verified_,
                             answered_, listed_, sessions_, *feed_,     documents_, tower_};
  return ctx.route->handler(services, RouteCall{req, ctx.params, ctx.who, ctx.session});
}

}  // namespace cp::serve
