// The REST API as plain functions of a request: routing, authorisation, validation and the answers. No
// HTTP library appears here (http_server.cpp adapts Pistache to this), so every rule is testable and the
// API calls the very services the CLI calls (QueueService, RunCatalog, the bundle store). The routes and
// their handlers live per resource in routes_*.cpp (the table: routes.hpp).
#pragma once

#include "serve/answer_memo.hpp"
#include "serve/auth.hpp"
#include "serve/root_documents.hpp"
#include "serve/sealed_answers.hpp"
#include "serve/sessions.hpp"
#include "serve/verify_cache.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}
namespace cp::queue {
class QueueService;
}

namespace cp::serve {

class RunCatalog;
class EventFeed;
struct AllRunsWatch;
class Metrics;
class Scheduler;
class CommandTower;
class UiAssets;

struct ApiRequest {
  std::string method;                          // GET, POST, ...
  std::string path;                            // raw, without the query string
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
};

// A live event stream the server must keep open: events of `bundle` after sequence number `after_seq`.
struct SseRequest {
  std::filesystem::path bundle;
  unsigned long long after_seq = 0;
  bool redact = true;                 // secrets in the events' strings are replaced (false: an admin's raw=1)
  std::shared_ptr<AllRunsWatch> all;  // set: every run's events (GET /api/events/stream); bundle unused
  std::string replay;                 // frames sent first (a resumed stream's events of ended runs)
  std::function<bool()> live;         // set: the stream ends once this says false (its session ended)
};

// A cookie the response sets (Set-Cookie), always with Path=/api and SameSite=Strict.
struct SetCookie {
  std::string name, value;
  long long max_age = 0;  // seconds; 0 deletes the cookie
  bool http_only = true;
  bool secure = false;  // serve --secure-cookies: TLS is terminated in front of serve
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<SetCookie> cookies;
  std::shared_ptr<SseRequest> sse;  // set: stream instead of sending body
  // Filled for the access log and metrics.
  std::string route;     // the pattern matched, or "unmatched"
  std::string token_id;  // who called, when known
  bool raw = false;      // an admin read a run's evidence unredacted (raw=1)
};

struct RouteInfo {
  const char* method;
  const char* pattern;  // OpenAPI path template; {path} in the last segment may span several segments
  Role role;            // least role needed (none = open to anyone)
};

struct ApiConfig {
  std::filesystem::path root;
  std::filesystem::path default_repo;                // for submissions that name none
  std::vector<std::filesystem::path> allowed_repos;  // submissions may name these or folders under them
  bool open_reads = false;                           // reads without a token (loopback only)
  std::string version;
  std::string openapi;                         // the OpenAPI document served at /api/openapi.json
  std::filesystem::path plugins_dir;           // for intake previews (they load the plugins like a run)
  std::vector<std::string> cors_origins;       // origins a browser may call from (scheme://host[:port])
  std::chrono::seconds session_ttl{8 * 3600};  // the longest a browser session lasts
  bool secure_cookies = false;                 // cookies carry Secure (TLS terminated in front of serve)
  // Serve listens on loopback: a request must name a loopback host (Host: 127.x, localhost, [::1]). A page
  // of another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name and is refused.
  bool loopback_host_only = false;
  // The dashboard, answered at every path outside /api (null: those paths are 404 like any unknown one).
  std::shared_ptr<const UiAssets> ui;
  // The nodes serving this queue, as GET /api/workers answers them ({workers: [...]}); null: this node only,
  // described by nothing more than health.
  std::function<nlohmann::json()> workers = {};
};

class Api {
 public:
  // Everything passed must outlive the Api; scheduler, registry and tower may be null.
  Api(ApiConfig cfg, const TokenStore& tokens, RunCatalog& runs, queue::QueueService& queue,
      Scheduler* scheduler, const plugin::Registry* registry, Metrics& metrics,
      const CommandTower* tower = nullptr);
  ~Api();

  ApiResponse handle(const ApiRequest& req) const;
  // The answer handle() would give before reading the body (no route, wrong method, no or too low a
  // token), or nullopt when the request may go on. Lets the server refuse a request whose body it has not
  // read yet, so a client without a token cannot make it hold a body in memory.
  std::optional<ApiResponse> refusal(const ApiRequest& req) const;

  // Every route served, in matching order (read from the route table).
  static const std::vector<RouteInfo>& routes();

 private:
  struct Ctx;
  std::optional<ApiResponse> admit(const ApiRequest& req, Ctx& ctx) const;
  std::optional<ApiResponse> authorise(const ApiRequest& req, Ctx& ctx) const;
  std::optional<ApiResponse> session_caller(const ApiRequest& req, const std::string& cookie, Ctx& ctx) const;
  ApiResponse preflight(const ApiRequest& req) const;
  void allow_origin(const ApiRequest& req, ApiResponse& r) const;
  ApiResponse dispatch(const ApiRequest& req, Ctx& ctx) const;

  ApiConfig cfg_;
  const TokenStore& tokens_;
  RunCatalog& runs_;
  queue::QueueService& queue_;
  Scheduler* scheduler_;
  const plugin::Registry* registry_;
  Metrics& metrics_;
  const CommandTower* tower_;
  mutable VerifyCache verified_;    // verify-on-read of sealed runs' details
  mutable SealedAnswers answered_;  // sealed runs' details, serialized, until their bundles change
  mutable AnswerMemo listed_;       // run list pages, serialized, for one catalogue generation
  mutable SessionStore sessions_;
  std::unique_ptr<EventFeed> feed_;  // the cross-run event views
  mutable RootDocuments documents_;  // GET /api/contracts and /api/policies: validated, cached per file
};

// Percent-decoding of one URL component ('+' is a space only in query strings); nullopt for a malformed
// escape or an encoded NUL.
std::optional<std::string> url_decode(std::string_view s, bool plus_is_space = false);

// A path inside `base` named by the untrusted relative path `rel` ('/'-separated), or nullopt with a reason
// when it would leave `base`: absolute, '..', empty or '.' segments, a NUL, or any symlink on the way.
std::optional<std::filesystem::path> safe_subpath(const std::filesystem::path& base, const std::string& rel,
                                                  std::string& why);

}  // namespace cp::serve
