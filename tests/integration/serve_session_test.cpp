// Browser access against a real `cp-host serve` on 127.0.0.1: a bearer token exchanged for a session
// cookie, the CSRF double submit on unsafe methods, expiry and logout, CORS for listed origins only, and
// event streams read with the cookie. The refusals are proved by what did not happen (no queue item).
#include "integration/serve_fixture.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

namespace cp::test {
namespace {

constexpr const char* kDashboard = "http://127.0.0.1:5173";

// The Set-Cookie line of `name` in a response, "" when absent.
std::string set_cookie(const HttpResponse& r, const std::string& name) {
  auto it = r.headers.find("set-cookie");
  if (it == r.headers.end()) return "";
  std::istringstream lines(it->second);
  for (std::string l; std::getline(lines, l);)
    if (l.rfind(name + "=", 0) == 0) return l;
  return "";
}

std::string cookie_value(const std::string& set_cookie_line) {
  auto eq = set_cookie_line.find('='), semi = set_cookie_line.find(';');
  return set_cookie_line.substr(eq + 1, semi - eq - 1);
}

struct SessionFixture : ::testing::Test {
  RunProject p;
  std::string viewer, op;
  std::unique_ptr<ServeProcess> serve;
  void SetUp() override {
    viewer = add_token(p, "dash", "viewer");
    op = add_token(p, "ops", "operator");
    serve = std::make_unique<ServeProcess>(
        p, std::vector<std::string>{"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string(),
                                    "--cors-origin", kDashboard});
    ASSERT_NE(serve->port(), 0) << serve->output();
  }
  struct Browser {
    std::string session, csrf;
    std::map<std::string, std::string> headers(bool with_csrf = true) const {
      std::map<std::string, std::string> h{{"Cookie", "cp_session=" + session + "; cp_csrf=" + csrf}};
      if (with_csrf) h["X-CSRF-Token"] = csrf;
      return h;
    }
  };
  Browser login(const std::string& token, const std::string& body = "") {
    auto h = bearer(token);
    if (!body.empty()) h["Content-Type"] = "application/json";
    auto r = http(serve->port(), "POST", "/api/session", h, body);
    EXPECT_EQ(r.status, 201) << r.body;
    Browser b;
    b.session = cookie_value(set_cookie(r, "cp_session"));
    b.csrf = cookie_value(set_cookie(r, "cp_csrf"));
    EXPECT_EQ(json::parse(r.body).value("csrf_token", ""), b.csrf);
    return b;
  }
  size_t queued() {
    auto r = http(serve->port(), "GET", "/api/queue", bearer(viewer));
    return json::parse(r.body)["items"].size();
  }
  std::string submission() const {
    return json{{"contract", queue_contract(p, "from-browser", {"true"})}}.dump();
  }
};

TEST_F(SessionFixture, ATokenBecomesAnHttpOnlyStrictCookieThatReadsAndLogsNothingSecret) {
  auto r = http(serve->port(), "POST", "/api/session", bearer(viewer));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string sc = set_cookie(r, "cp_session"), csrf = set_cookie(r, "cp_csrf");
  ASSERT_FALSE(sc.empty()) << r.headers["set-cookie"];
  EXPECT_NE(sc.find("HttpOnly"), std::string::npos) << sc;
  EXPECT_NE(sc.find("SameSite=Strict"), std::string::npos) << sc;
  EXPECT_NE(sc.find("Path=/api"), std::string::npos) << sc;
  EXPECT_NE(sc.find("Max-Age=28800"), std::string::npos) << sc;
  EXPECT_EQ(sc.find("Secure"), std::string::npos) << "plain HTTP without --secure-cookies";
  EXPECT_EQ(csrf.find("HttpOnly"), std::string::npos) << "the page reads the CSRF cookie: " << csrf;
  EXPECT_EQ(r.body.find(cookie_value(sc)), std::string::npos) << "the session id is never in a body";
  json body = json::parse(r.body);
  EXPECT_EQ(body["role"], "viewer");
  EXPECT_EQ(body["token_id"], "dash");

  Browser b{cookie_value(sc), cookie_value(csrf)};
  auto runs = http(serve->port(), "GET", "/api/runs", b.headers(false));
  EXPECT_EQ(runs.status, 200) << runs.body;
  // A viewer's session is still a viewer: an operator route is refused and nothing is queued.
  auto sub = http(serve->port(), "POST", "/api/runs", b.headers(), submission());
  EXPECT_EQ(sub.status, 403) << sub.body;
  EXPECT_EQ(queued(), 0u);

  serve->stop();
  // Neither the token nor the session nor the CSRF token reached serve's output or any log lane.
  std::string everything = serve->output();
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p.dir / ".runtime-cache/logs", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) everything += read_file(it->path());
  EXPECT_FALSE(everything.empty());
  for (const std::string& secret : {viewer, b.session, b.csrf})
    EXPECT_EQ(everything.find(secret), std::string::npos) << "a secret reached a log";
}

TEST_F(SessionFixture, UnsafeMethodsNeedTheCsrfTokenAndAnAllowedOrigin) {
  Browser b = login(op);
  // No CSRF header.
  auto r = http(serve->port(), "POST", "/api/runs", b.headers(false), submission());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "csrf");
  // A wrong one.
  auto h = b.headers();
  h["X-CSRF-Token"] = "cpt_" + std::string(64, '0');
  EXPECT_EQ(http(serve->port(), "POST", "/api/runs", h, submission()).status, 403);
  // The header without the matching cookie (double submit).
  h = {{"Cookie", "cp_session=" + b.session}, {"X-CSRF-Token", b.csrf}};
  EXPECT_EQ(http(serve->port(), "POST", "/api/runs", h, submission()).status, 403);
  // Right token, but from a page of another origin on this host (same-site to the cookie).
  h = b.headers();
  h["Origin"] = "http://127.0.0.1:9999";
  r = http(serve->port(), "POST", "/api/runs", h, submission());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "cors_origin_not_allowed");
  // Two session cookies: ambiguous, refused.
  h = b.headers();
  h["Cookie"] = "cp_session=" + b.session + "; cp_session=other; cp_csrf=" + b.csrf;
  EXPECT_EQ(http(serve->port(), "POST", "/api/runs", h, submission()).status, 401);
  EXPECT_EQ(queued(), 0u) << "no refused request queued anything";

  // The listed dashboard origin with the right token acts.
  h = b.headers();
  h["Origin"] = kDashboard;
  h["Content-Type"] = "application/json";
  r = http(serve->port(), "POST", "/api/runs", h, submission());
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["access-control-allow-origin"], kDashboard);
  EXPECT_EQ(queued(), 1u);
}

TEST_F(SessionFixture, ExpiredAndEndedSessionsAre401) {
  Browser shortlived = login(viewer, R"({"ttl_sec": 1})");
  EXPECT_EQ(http(serve->port(), "GET", "/api/runs", shortlived.headers(false)).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto r = http(serve->port(), "GET", "/api/runs", shortlived.headers(false));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "session_expired");
  EXPECT_NE(set_cookie(r, "cp_session").find("Max-Age=0"), std::string::npos) << "the dead cookie is cleared";

  Browser b = login(viewer);
  EXPECT_EQ(http(serve->port(), "DELETE", "/api/session", b.headers(false)).status, 403) << "CSRF on DELETE";
  r = http(serve->port(), "DELETE", "/api/session", b.headers());
  EXPECT_EQ(r.status, 204) << r.body;
  r = http(serve->port(), "GET", "/api/runs", b.headers(false));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "session_unknown");
  // An invented cookie is refused as well, and bad lifetimes are 422.
  EXPECT_EQ(http(serve->port(), "GET", "/api/runs", {{"Cookie", "cp_session=cpt_forged"}}).status, 401);
  auto h = bearer(viewer);
  EXPECT_EQ(http(serve->port(), "POST", "/api/session", h, R"({"ttl_sec": 0})").status, 422);
  EXPECT_EQ(http(serve->port(), "POST", "/api/session", h, R"({"ttl_sec": 999999})").status, 422);
  EXPECT_EQ(http(serve->port(), "POST", "/api/session", h, "[1]").status, 400);
  EXPECT_EQ(http(serve->port(), "POST", "/api/session").status, 401) << "a session needs a token";
  EXPECT_EQ(http(serve->port(), "DELETE", "/api/session", bearer(viewer)).status, 409) << "no session to end";
}

// A reloaded page has only its cookies, and cp_csrf (Path=/api) is out of its reach: GET /api/session tells
// it who it is and its CSRF token, which then works for an unsafe method. Two sessions of one token get
// their own tokens; a bearer caller gets no CSRF token; an ended session is nobody.
TEST_F(SessionFixture, ASessionCookieAloneTellsThePageWhoItIsAndItsCsrfToken) {
  auto opened = http(serve->port(), "POST", "/api/session", bearer(op));
  ASSERT_EQ(opened.status, 201) << opened.body;
  json first = json::parse(opened.body);
  Browser b{cookie_value(set_cookie(opened, "cp_session")), cookie_value(set_cookie(opened, "cp_csrf"))};
  Browser other = login(op);
  ASSERT_NE(other.csrf, b.csrf);

  auto r = http(serve->port(), "GET", "/api/session", {{"Cookie", "cp_session=" + b.session}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["cache-control"], "no-store");
  json me = json::parse(r.body);
  EXPECT_EQ(me["token_id"], "ops");
  EXPECT_EQ(me["role"], "operator");
  EXPECT_EQ(me["via"], "session");
  EXPECT_EQ(me["csrf_token"], b.csrf) << "this session's token, not the other session's";
  EXPECT_EQ(me["expires_at"], first["expires_at"]);
  EXPECT_EQ(r.body.find(b.session), std::string::npos) << "the session id is never in a body";
  // The token read back does the double submit: a write goes through and is queued.
  Browser reloaded{b.session, me["csrf_token"]};
  auto sub = http(serve->port(), "POST", "/api/runs", reloaded.headers(), submission());
  EXPECT_EQ(sub.status, 202) << sub.body;
  EXPECT_EQ(queued(), 1u);

  r = http(serve->port(), "GET", "/api/session", bearer(viewer));
  ASSERT_EQ(r.status, 200) << r.body;
  me = json::parse(r.body);
  EXPECT_EQ(me["role"], "viewer");
  EXPECT_EQ(me["via"], "bearer");
  EXPECT_TRUE(me["csrf_token"].is_null());
  EXPECT_TRUE(me["expires_at"].is_null());

  ASSERT_EQ(http(serve->port(), "DELETE", "/api/session", b.headers()).status, 204);
  r = http(serve->port(), "GET", "/api/session", {{"Cookie", "cp_session=" + b.session}});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "session_unknown");
  EXPECT_EQ(http(serve->port(), "GET", "/api/session").status, 401) << "no caller, no answer";
  EXPECT_EQ(http(serve->port(), "GET", "/api/session", other.headers(false)).status, 200)
      << "ending one session leaves the other";
}

TEST_F(SessionFixture, CorsPreflightAnswersListedOriginsOnly) {
  std::map<std::string, std::string> pre{{"Origin", kDashboard},
                                         {"Access-Control-Request-Method", "POST"},
                                         {"Access-Control-Request-Headers", "content-type, x-csrf-token"}};
  auto r = http(serve->port(), "OPTIONS", "/api/runs", pre);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.headers["access-control-allow-origin"], kDashboard);
  EXPECT_EQ(r.headers["access-control-allow-credentials"], "true");
  EXPECT_NE(r.headers["access-control-allow-methods"].find("POST"), std::string::npos);
  EXPECT_NE(r.headers["access-control-allow-headers"].find("X-CSRF-Token"), std::string::npos);

  pre["Origin"] = "http://evil.example";
  r = http(serve->port(), "OPTIONS", "/api/runs", pre);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u);
  EXPECT_EQ(r.headers.count("access-control-allow-credentials"), 0u);
  // A plain read from an unlisted origin gets its answer without CORS headers: the browser hides it.
  r = http(serve->port(), "GET", "/api/runs",
           {{"Origin", "http://evil.example"}, {"Authorization", "Bearer " + viewer}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u);
  // From the listed origin: readable, errors included.
  r = http(serve->port(), "GET", "/api/runs", {{"Origin", kDashboard}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.headers["access-control-allow-origin"], kDashboard);
  EXPECT_EQ(http(serve->port(), "OPTIONS", "/api/nope", pre).status, 404);
}

TEST_F(SessionFixture, EventStreamsWorkWithTheCookie) {
  Browser ops = login(op);
  auto h = ops.headers();
  h["Content-Type"] = "application/json";
  auto r = http(serve->port(), "POST", "/api/runs", h, submission());
  ASSERT_EQ(r.status, 202) << r.body;
  std::string item = json::parse(r.body)["item_id"];
  json it;
  ASSERT_TRUE(wait_until(
      [&] {
        it = json::parse(http(serve->port(), "GET", "/api/queue/" + item, ops.headers(false)).body);
        return it.value("state", "") == "done";
      },
      std::chrono::seconds(60)))
      << it.dump();
  std::string run = it["run_id"];
  Browser b = login(viewer);
  auto sse = read_sse(serve->port(), "/api/runs/" + run + "/events/stream", b.headers(false), 1000,
                      std::chrono::seconds(10));
  EXPECT_EQ(sse.status, 200);
  ASSERT_FALSE(sse.events.empty());
  EXPECT_TRUE(sse.ended) << "a sealed run's stream ends";
  auto refused = read_sse(serve->port(), "/api/runs/" + run + "/events/stream",
                          {{"Cookie", "cp_session=cpt_forged"}}, 10, std::chrono::seconds(5));
  EXPECT_EQ(refused.status, 401);
  EXPECT_TRUE(refused.events.empty());
}

// Logging out ends what the session opened: a live stream of every run's events (which never ends by
// itself) is closed by serve once its session is ended.
TEST_F(SessionFixture, LoggingOutEndsTheSessionsOpenStreams) {
  Browser b = login(viewer);
  int fd = connect_loopback(serve->port());
  ASSERT_GE(fd, 0);
  std::string req =
      "GET /api/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: cp_session=" + b.session + "\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  timeval wait{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  std::string got;
  char buf[4096];
  while (got.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<size_t>(n));
  }
  ASSERT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  ASSERT_EQ(http(serve->port(), "DELETE", "/api/session", b.headers()).status, 204);
  // Read (keep-alive comments, events) until serve closes; the deadline only bounds a broken build.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  ssize_t n = 1;
  while (n > 0 && std::chrono::steady_clock::now() < deadline) {
    n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(n, 0) << "the stream was still open after logout";
}

// Every run's events: the live stream read with a session cookie while a run happens, the page view
// against the bundle's own events.jsonl, and a resume from an event id.
TEST_F(SessionFixture, EveryRunsEventsStreamWithTheCookieAndPageNewestFirst) {
  Browser b = login(op);
  SseResult live;
  std::thread reader([&] {
    live = read_sse(serve->port(), "/api/events/stream?type=RUNNER_STARTED", b.headers(false), 1,
                    std::chrono::seconds(60));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the stream starts "from now"
  auto h = b.headers();
  h["Content-Type"] = "application/json";
  auto r = http(serve->port(), "POST", "/api/runs", h, submission());
  ASSERT_EQ(r.status, 202) << r.body;
  std::string item = json::parse(r.body)["item_id"];
  reader.join();
  EXPECT_EQ(live.status, 200);
  ASSERT_EQ(live.events.size(), 1u) << "the filtered stream saw the new run start";
  EXPECT_EQ(live.events[0].event, "RUNNER_STARTED");
  json started = json::parse(live.events[0].data);
  json it;
  ASSERT_TRUE(wait_until(
      [&] {
        it = json::parse(http(serve->port(), "GET", "/api/queue/" + item, b.headers(false)).body);
        return it.value("state", "") == "done";
      },
      std::chrono::seconds(60)));
  std::string run = it["run_id"];
  EXPECT_EQ(started["run_id"], run);

  // Pages of every event, newest first, equal the bundle's log read backwards.
  std::vector<json> logged;
  std::istringstream log(read_file(p.dir / ".runtime-cache/cortexpilot/runs" / run / "events.jsonl"));
  for (std::string line; std::getline(log, line);) logged.push_back(json::parse(line));
  std::vector<json> paged;
  std::string cursor;
  ASSERT_TRUE(wait_until(
      [&] {
        paged.clear();
        cursor.clear();
        for (int i = 0; i < 100; ++i) {
          auto page = json::parse(http(serve->port(), "GET",
                                       "/api/events?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor),
                                       b.headers(false))
                                      .body);
          for (auto& e : page["events"]) paged.push_back(e);
          if (page["next_cursor"].is_null()) break;
          cursor = page["next_cursor"];
        }
        return paged.size() == logged.size();
      },
      std::chrono::seconds(10)))
      << paged.size() << " of " << logged.size();
  for (size_t i = 0; i < logged.size(); ++i) EXPECT_EQ(paged[i]["seq"], logged[logged.size() - 1 - i]["seq"]);

  // Resume after the RUNNER_STARTED event: what followed it in the (now sealed) run comes first.
  auto resumed = read_sse(serve->port(), "/api/events/stream?run=" + run,
                          {{"Cookie", "cp_session=" + b.session}, {"Last-Event-ID", live.events[0].id}}, 1000,
                          std::chrono::seconds(3));
  EXPECT_EQ(resumed.status, 200);
  unsigned long long from = started["seq"];
  ASSERT_EQ(resumed.events.size(), logged.size() - from) << "every event after the resume point, once";
  for (size_t i = 0; i < resumed.events.size(); ++i)
    EXPECT_EQ(json::parse(resumed.events[i].data)["seq"], from + 1 + i);

  EXPECT_EQ(http(serve->port(), "GET", "/api/events?cursor=zz", b.headers(false)).status, 400);
  EXPECT_EQ(http(serve->port(), "GET", "/api/events?type=a%20b", b.headers(false)).status, 400);
  EXPECT_EQ(http(serve->port(), "GET", "/api/events?limit=0", b.headers(false)).status, 400);
  EXPECT_EQ(http(serve->port(), "GET", "/api/events?runn=x", b.headers(false)).status, 400);
  EXPECT_EQ(http(serve->port(), "GET", "/api/events/stream?after=zz", b.headers(false)).status, 400);
  EXPECT_EQ(http(serve->port(), "GET", "/api/events").status, 401);
}

// What an adversarial review found, each now refused: sessions made anonymously under --open-reads, a page
// of a rebinding name reading a loopback serve, a FIFO planted as a bundle's events log holding the API.
TEST(SessionHardening, OpenReadsMakeNoSessionsAndRebindingNamesAreRefused) {
  RunProject p;
  ServeProcess serve(p, {"--open-reads"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  auto r = http(serve.port(), "POST", "/api/session", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.headers.count("set-cookie"), 0u) << "no session was made";
  EXPECT_EQ(http(serve.port(), "GET", "/api/runs").status, 200) << "open reads still read";

  std::string port = std::to_string(serve.port());
  r = http(serve.port(), "GET", "/api/runs", {{"Host", "rebind.attacker.example:" + port}});
  EXPECT_EQ(r.status, 421) << r.body;
  EXPECT_EQ(r.body.find("\"runs\""), std::string::npos) << "nothing of the API was answered";
  for (const std::string& host :
       {"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port, std::string("127.0.0.2")})
    EXPECT_EQ(http(serve.port(), "GET", "/api/runs", {{"Host", host}}).status, 200) << host;

  // A bundle whose events.jsonl is a FIFO: refused at once, and the API keeps answering.
  fs::path planted = p.dir / ".runtime-cache/cortexpilot/runs/planted-fifo";
  fs::create_directories(planted);
  ASSERT_EQ(::mkfifo((planted / "events.jsonl").c_str(), 0600), 0);
  cp::test::write_file(planted / "manifest.json", R"({"run_id":"planted-fifo","status":"sealed"})");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(
        http(serve.port(), "GET", "/api/runs/planted-fifo/events", {}, "", std::chrono::seconds(5)).status,
        409);
  auto sse = read_sse(serve.port(), "/api/runs/planted-fifo/events/stream", {}, 1, std::chrono::seconds(2));
  EXPECT_TRUE(sse.events.empty());
  EXPECT_EQ(http(serve.port(), "GET", "/api/health", {}, "", std::chrono::seconds(5)).status, 200);
}

}  // namespace
}  // namespace cp::test
