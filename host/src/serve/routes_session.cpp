// Browser sessions: POST /api/session exchanges the caller's bearer token for a session cookie (HttpOnly,
// SameSite=Strict, Path=/api) and a CSRF token; GET /api/session tells a reloaded page who it is and its
// CSRF token (the cp_csrf cookie has Path=/api, so a page at / cannot read it); DELETE /api/session ends
// the session. The cookie's value never appears in an answer body or a log line.
#include "core/clock.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

#include <nlohmann/json.hpp>

namespace cp::serve {

using nlohmann::json;

namespace {

ApiResponse open_session(const ApiServices& s, const RouteCall& c) {
  if (!c.session.empty())
    return error(409, "session_exists",
                 "this request came with a session already; a session is made from a bearer token "
                 "(Authorization: Bearer <token>)");
  if (c.who.role == Role::none)
    return error(
        401, "unauthorized",
        "a session is made from a bearer token (Authorization: Bearer <token>); --open-reads does not "
        "make one");
  auto body = object_body(c.req.body);
  if (!body) return error(400, "bad_body", "the body must be empty or a JSON object {\"ttl_sec\": N}");
  for (const auto& [k, v] : body->items())
    if (k != "ttl_sec")
      return error(422, "invalid", "/" + k + ": unknown field; the body takes only ttl_sec",
                   {{"pointer", "/" + k}});
  auto ttl = s.cfg.session_ttl;
  if (body->contains("ttl_sec")) {
    const json& t = (*body)["ttl_sec"];
    long long max = s.cfg.session_ttl.count();
    if (!t.is_number_integer() || t.get<long long>() < 1 || t.get<long long>() > max)
      return error(422, "invalid",
                   "/ttl_sec must be an integer from 1 to " + std::to_string(max) +
                       " (serve --session-ttl); leave it out for the longest");
    ttl = std::chrono::seconds(t.get<long long>());
  }
  auto opened = s.sessions.open(c.who, ttl);
  if (!opened) return error(503, "busy", "too many open sessions; retry later or end unused ones");
  auto expires_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(opened->expires.time_since_epoch()).count();
  ApiResponse r = ok_json({{"token_id", c.who.token_id},
                           {"role", role_name(c.who.role)},
                           {"csrf_token", opened->csrf},
                           {"expires_at", core::iso_from_ms(expires_ms)}},
                          201);
  r.cookies.push_back({kSessionCookie, opened->id, ttl.count(), true, s.cfg.secure_cookies});
  r.cookies.push_back({kCsrfCookie, opened->csrf, ttl.count(), false, s.cfg.secure_cookies});
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// Who the caller is. A session caller also gets its session's expiry and CSRF token; a bearer caller gets
// nulls there (it has no session, and needs no CSRF token). Anonymous callers (--open-reads) are nobody.
ApiResponse current_session(const ApiServices& s, const RouteCall& c) {
  if (c.who.role == Role::none)
    return error(401, "unauthorized",
                 "this request came with neither a session cookie nor a bearer token; log in with "
                 "POST /api/session (Authorization: Bearer <token>)");
  json body{{"token_id", c.who.token_id},
            {"role", role_name(c.who.role)},
            {"via", c.session.empty() ? "bearer" : "session"},
            {"expires_at", nullptr},
            {"csrf_token", nullptr}};
  if (!c.session.empty()) {
    SessionStore::Lookup why;
    auto session = s.sessions.find(c.session, why);
    if (!session)  // ended or expired between admission and here
      return error(401, why == SessionStore::Lookup::expired ? "session_expired" : "session_unknown",
                   "the session ended; exchange a bearer token again with POST /api/session");
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(session->expires.time_since_epoch());
    body["expires_at"] = core::iso_from_ms(ms.count());
    body["csrf_token"] = session->csrf;
  }
  ApiResponse r = ok_json(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

ApiResponse close_session(const ApiServices& s, const RouteCall& c) {
  if (c.session.empty())
    return error(409, "no_session", "this request came with no session cookie; there is no session to end");
  s.sessions.close(c.session);
  ApiResponse r;
  r.status = 204;
  r.content_type = "text/plain";
  r.cookies.push_back({kSessionCookie, "", 0, true, s.cfg.secure_cookies});
  r.cookies.push_back({kCsrfCookie, "", 0, false, s.cfg.secure_cookies});
  return r;
}

}  // namespace

std::vector<Route> session_routes() {
  return {
      {{"GET", "/api/session", Role::viewer}, current_session},
      {{"POST", "/api/session", Role::viewer}, open_session},
      {{"DELETE", "/api/session", Role::viewer}, close_session},
  };
}

}  // namespace cp::serve
