// The REST API against a real `cp-host serve` on 127.0.0.1: every route's answer and its errors.
#include "integration/serve_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

namespace cp::test {
namespace {

struct ApiFixture : ::testing::Test {
  RunProject p;
  std::string viewer, op;
  std::unique_ptr<ServeProcess> serve;
  void SetUp() override {
    viewer = add_token(p, "dash", "viewer");
    op = add_token(p, "ops", "operator");
    serve = std::make_unique<ServeProcess>(
        p, std::vector<std::string>{"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string(),
                                    "--max-body", "65536"});
    ASSERT_NE(serve->port(), 0) << serve->output();
  }
  HttpResponse get(const std::string& target, const std::string& token = "") {
    return http(serve->port(), "GET", target,
                token.empty() ? std::map<std::string, std::string>{} : bearer(token));
  }
  HttpResponse post(const std::string& target, const std::string& body, const std::string& token) {
    auto h = bearer(token);
    h["Content-Type"] = "application/json";
    return http(serve->port(), "POST", target, h, body);
  }
  // Submits and waits for the item to end; returns the item.
  json run_to_end(const json& contract) {
    auto r = post("/api/runs", json{{"contract", contract}}.dump(), op);
    EXPECT_EQ(r.status, 202) << r.body;
    std::string id = json::parse(r.body)["item_id"];
    json item;
    EXPECT_TRUE(wait_until(
        [&] {
          item = json::parse(get("/api/queue/" + id, viewer).body);
          return item.value("state", "") == "done" || item.value("state", "") == "cancelled";
        },
        std::chrono::seconds(60)))
        << item.dump(2);
    return item;
  }
};

json error_of(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"] : json();
}

TEST_F(ApiFixture, OpenRoutesAndAuthentication) {
  auto h = get("/api/health");
  EXPECT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  auto doc = get("/api/openapi.json");
  ASSERT_EQ(doc.status, 200);
  EXPECT_EQ(json::parse(doc.body)["openapi"], "3.0.3");

  auto anon = get("/api/version");
  EXPECT_EQ(anon.status, 401);
  EXPECT_NE(anon.headers["www-authenticate"].find("Bearer"), std::string::npos);
  EXPECT_EQ(error_of(anon)["code"], "unauthorized");
  EXPECT_EQ(get("/api/version", "cpt_" + std::string(64, '0')).status, 401);
  auto v = get("/api/version", viewer);
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_EQ(json::parse(v.body)["version"], "0.1.0");
  EXPECT_FALSE(v.headers["x-request-id"].empty());

  auto plugins = get("/api/plugins", viewer);
  ASSERT_EQ(plugins.status, 200);
  bool tool = false;
  json listed = json::parse(plugins.body);
  for (const auto& pl : listed["plugins"]) tool = tool || pl["id"] == "tool";
  EXPECT_TRUE(tool) << plugins.body;
  // The shipped plugins load, so nothing is refused (a refusal is listed with its reason: ops.spec.ts).
  EXPECT_TRUE(listed["refused"].is_array() && listed["refused"].empty()) << plugins.body;

  // A viewer may read but not write.
  auto denied = post("/api/runs", p.contract({"true"}).dump(), viewer);
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_NE(error_of(denied)["message"].get<std::string>().find("needs operator"), std::string::npos);

  EXPECT_EQ(get("/api/nothing-here", viewer).status, 404);
  auto wrong_method = http(serve->port(), "DELETE", "/api/runs", bearer(op));
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.headers["allow"], "GET, POST");
}

TEST_F(ApiFixture, SubmitRefusesBadInputWithValidateMessages) {
  // Not JSON, and too deep, are 400.
  EXPECT_EQ(post("/api/runs", "{not json", op).status, 400);
  EXPECT_EQ(post("/api/runs", std::string(300, '[') + std::string(300, ']'), op).status, 400);
  // Over --max-body: 413 before any handler.
  auto big = post("/api/runs", json{{"contract", {{"pad", std::string(100000, 'x')}}}}.dump(), op);
  EXPECT_EQ(big.status, 413) << big.body;

  // Schema errors: 422 with the messages `cp-host validate` prints for the same document.
  json bad = p.contract({"true"});
  bad.erase("acceptance_tests");
  bad["budgets"]["wall_time_sec"] = "soon";
  auto r = post("/api/runs", json{{"contract", bad}}.dump(), op);
  ASSERT_EQ(r.status, 422) << r.body;
  json details = error_of(r)["details"];
  write_file(p.dir / "bad.json", bad.dump(2));
  Ran v =
      host({"--root", p.dir.path().string(), "validate", (p.dir / "bad.json").string(), "--format", "json"});
  json vj = json::parse(v.out);
  std::set<std::string> api_msgs, cli_msgs;
  for (const auto& d : details) {
    api_msgs.insert(d["message"].get<std::string>());
    EXPECT_EQ(d["pointer"].get<std::string>().rfind("/contract/", 0), 0u) << d.dump();
  }
  for (const auto& d : vj["diagnostics"]) cli_msgs.insert(d["message"].get<std::string>());
  EXPECT_FALSE(api_msgs.empty());
  EXPECT_EQ(api_msgs, cli_msgs) << r.body << "\n" << v.out;

  // A repo the server was not told about.
  auto elsewhere = post("/api/runs", json{{"contract", p.contract({"true"})}, {"repo", "/"}}.dump(), op);
  EXPECT_EQ(elsewhere.status, 422);
  EXPECT_EQ(error_of(elsewhere)["code"], "repo_not_allowed");
  // An unknown dependency.
  auto dep =
      post("/api/runs", json{{"contract", p.contract({"true"})}, {"depends_on", {"q-nope"}}}.dump(), op);
  EXPECT_EQ(dep.status, 409) << dep.body;
  // Nothing of that reached the queue.
  EXPECT_TRUE(json::parse(get("/api/queue", viewer).body)["items"].empty());
}

TEST_F(ApiFixture, ARunThroughTheApi) {
  json item = run_to_end(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(item["status"], "success") << item.dump(2);
  EXPECT_EQ(item["submitted_by"], "ops");
  const std::string rid = item["run_id"];

  // List, filters, detail.
  auto list = json::parse(get("/api/runs", viewer).body);
  ASSERT_EQ(list["runs"].size(), 1u) << list.dump(2);
  EXPECT_EQ(list["runs"][0]["run_id"], rid);
  EXPECT_EQ(list["runs"][0]["queue"]["item_id"], item["item_id"]);
  EXPECT_EQ(json::parse(get("/api/runs?status=success&runner=tool&pack=medium", viewer).body)["count"], 1);
  EXPECT_EQ(json::parse(get("/api/runs?status=failure", viewer).body)["count"], 0);
  EXPECT_EQ(json::parse(get("/api/runs?since=2999-01-01T00:00:00Z", viewer).body)["count"], 0);
  EXPECT_EQ(get("/api/runs?limit=0", viewer).status, 400);
  EXPECT_EQ(get("/api/runs?since=yesterday", viewer).status, 400);
  EXPECT_EQ(get("/api/runs?cursor=zz", viewer).status, 400);
  auto detail = get("/api/runs/" + rid, viewer);
  ASSERT_EQ(detail.status, 200);
  json d = json::parse(detail.body);
  EXPECT_EQ(d["manifest"]["verdict"], "success");
  EXPECT_NE(std::find(d["reports"].begin(), d["reports"].end(), "task_result"), d["reports"].end());
  EXPECT_EQ(get("/api/runs/no-such-run", viewer).status, 404);
  EXPECT_EQ(get("/api/runs/..%2Fqueue", viewer).status, 400);

  // Events, in order, from a point.
  json ev = json::parse(get("/api/runs/" + rid + "/events", viewer).body);
  ASSERT_GE(ev["events"].size(), 5u);
  for (size_t i = 0; i < ev["events"].size(); ++i) EXPECT_EQ(ev["events"][i]["seq"], i + 1);
  size_t n = ev["events"].size();
  json tail =
      json::parse(get("/api/runs/" + rid + "/events?after_seq=" + std::to_string(n - 1), viewer).body);
  ASSERT_EQ(tail["events"].size(), 1u);
  EXPECT_EQ(tail["events"][0]["type"], "RUN_SEALED");
  json page = json::parse(get("/api/runs/" + rid + "/events?limit=2", viewer).body);
  EXPECT_EQ(page["events"].size(), 2u);
  EXPECT_TRUE(page["more"]);
  EXPECT_EQ(get("/api/runs/" + rid + "/events?after_seq=-1", viewer).status, 400);

  // Reports.
  auto rep = get("/api/runs/" + rid + "/reports/task_result", viewer);
  ASSERT_EQ(rep.status, 200);
  EXPECT_EQ(json::parse(rep.body)["run_id"], rid);
  EXPECT_EQ(get("/api/runs/" + rid + "/reports/gate_diff_scope.json", viewer).status, 200);
  EXPECT_EQ(get("/api/runs/" + rid + "/reports/nope", viewer).status, 404);
  EXPECT_EQ(get("/api/runs/" + rid + "/reports/..%2Fmanifest", viewer).status, 400);

  // Artifacts, and every way out of the bundle refused.
  auto diff = get("/api/runs/" + rid + "/artifacts/diff.patch", viewer);
  ASSERT_EQ(diff.status, 200);
  EXPECT_NE(diff.body.find("+echo \"Hello"), std::string::npos) << diff.body;
  EXPECT_EQ(diff.headers["content-type"].rfind("text/plain", 0), 0u);
  fs::path arts = p.dir / ".runtime-cache/cortexpilot/runs" / rid / "artifacts";
  fs::create_symlink("/etc/passwd", arts / "passwd");
  fs::create_directory_symlink("/etc", arts / "etc");
  write_file(p.dir / ".runtime-cache/cortexpilot/runs" / rid / "secret.txt", "bundle-level file");
  for (const char* bad : {"..%2Fmanifest.json", "%2E%2E/secret.txt", "%2Fetc%2Fpasswd", "passwd",
                          "etc/passwd", "tests/..%2F..%2Fsecret.txt", "a%00b", "tool//x"}) {
    auto r = get("/api/runs/" + rid + "/artifacts/" + bad, viewer);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_EQ(r.body.find("root:"), std::string::npos);
    EXPECT_EQ(r.body.find("bundle-level"), std::string::npos);
  }
  EXPECT_EQ(get("/api/runs/" + rid + "/artifacts/missing.txt", viewer).status, 404);
  EXPECT_EQ(get("/api/runs/" + rid + "/artifacts/tests", viewer).status, 404);  // a folder

  // Cancelling an item that has ended, or one that does not exist.
  EXPECT_EQ(post("/api/runs/" + item["item_id"].get<std::string>() + "/cancel", "", op).status, 409);
  EXPECT_EQ(post("/api/runs/" + rid + "/cancel", "", op).status, 409);
  EXPECT_EQ(post("/api/runs/q-nope/cancel", "", op).status, 404);
  EXPECT_EQ(post("/api/runs/" + rid + "/cancel", "", viewer).status, 403);

  // Metrics see the run, its gates and the requests.
  auto m = get("/metrics", viewer);
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("cp_runs{status=\"success\"} 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("cp_gate_outcomes{gate=\"diff_scope\",verdict=\"pass\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("cp_queue_depth 0"), std::string::npos);
  EXPECT_NE(m.body.find("cp_http_request_duration_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  EXPECT_NE(m.body.find("route=\"/api/runs/{id}/artifacts/{path}\",code=\"400\""), std::string::npos);

  // The access log: one envelope per request, token ids, never a token.
  serve->stop();
  std::string log = read_file(p.dir / ".runtime-cache/logs/access/access.jsonl");
  EXPECT_EQ(log.find(viewer), std::string::npos);
  EXPECT_EQ(log.find(op), std::string::npos);
  size_t lines = 0, by_dash = 0;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    json e = json::parse(line);
    ++lines;
    EXPECT_EQ(e["lane"], "access");
    EXPECT_EQ(e["correlation_kind"], "request");
    if (e["fields"]["token_id"] == "dash") ++by_dash;
  }
  EXPECT_GT(lines, 30u);
  EXPECT_GT(by_dash, 20u);
}

TEST(ServeApi, PagesAreStableOverManyRuns) {
  RunProject p;
  std::string viewer = add_token(p, "dash", "viewer");
  auto first = p.run(p.contract({"true"}));
  ASSERT_FALSE(first.bundle.empty()) << first.ran.err;
  // 150 more bundles: copies of a real one, each with its own id and creation time (some equal, so ties are
  // broken by run id).
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  for (int i = 0; i < 150; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "copy-%03d", i);
    fs::copy(first.bundle, runs / id, fs::copy_options::recursive);
    json m = first.manifest;
    m["run_id"] = id;
    char ts[64];
    std::snprintf(ts, sizeof ts, "2026-01-01T00:%02d:00.000Z", i / 3);
    m["created_at"] = ts;
    m["verdict"] = i % 2 ? "success" : "failure";
    write_file(runs / id / "manifest.json", m.dump());
  }
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;;) {
    auto r = http(serve.port(), "GET", "/api/runs?limit=40" + (cursor.empty() ? "" : "&cursor=" + cursor),
                  bearer(viewer));
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    for (const auto& run : j["runs"]) seen.push_back(run["run_id"]);
    ++pages;
    if (pages == 1) {
      // A run created while paging lands on top and does not shift the pages still to come.
      fs::copy(first.bundle, runs / "copy-new", fs::copy_options::recursive);
      json m = first.manifest;
      m["run_id"] = "copy-new";
      m["created_at"] = "2030-01-01T00:00:00.000Z";
      write_file(runs / "copy-new" / "manifest.json", m.dump());
    }
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"];
  }
  EXPECT_EQ(pages, 4);
  ASSERT_EQ(seen.size(), 151u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 151u) << "a run appeared twice";
  EXPECT_EQ(seen.front(), first.manifest["run_id"]);  // the newest
  EXPECT_EQ(seen[1], "copy-149");                     // ties: higher id first
  EXPECT_EQ(seen.back(), "copy-000");
  // Filters page too.
  auto fail =
      json::parse(http(serve.port(), "GET", "/api/runs?status=failure&limit=1000", bearer(viewer)).body);
  EXPECT_EQ(fail["count"], 75 + (first.manifest["verdict"] == "failure" ? 1 : 0));
  // The new run is listed once the catalog catches up.
  EXPECT_TRUE(wait_until(
      [&] {
        auto top = json::parse(http(serve.port(), "GET", "/api/runs?limit=1", bearer(viewer)).body);
        return top["runs"][0]["run_id"] == "copy-new";
      },
      std::chrono::seconds(10)));
}

TEST(ServeApi, LiveEventsStreamAndResume) {
  RunProject p;
  std::string viewer = add_token(p, "dash", "viewer");
  std::string op = add_token(p, "ops", "operator");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()});
  ASSERT_NE(serve.port(), 0) << serve.output();
  json c = p.contract({"sleep 1", "echo one", "sleep 1", "sed -i s/Helo/Hello/ src/greeting.sh"});
  auto sub = http(serve.port(), "POST", "/api/runs", bearer(op), json{{"contract", c}}.dump());
  ASSERT_EQ(sub.status, 202) << sub.body;
  std::string item = json::parse(sub.body)["item_id"];
  std::string rid;
  ASSERT_TRUE(wait_until(
      [&] {
        json it = json::parse(http(serve.port(), "GET", "/api/queue/" + item, bearer(viewer)).body);
        rid = it.value("run_id", "");
        return !rid.empty() && fs::exists(p.dir / ".runtime-cache/cortexpilot/runs" / rid);
      },
      std::chrono::seconds(20)));

  // The first three events while the run is live, then the client hangs up.
  auto part = read_sse(serve.port(), "/api/runs/" + rid + "/events/stream", bearer(viewer), 3,
                       std::chrono::seconds(20));
  EXPECT_EQ(part.status, 200);
  EXPECT_EQ(part.content_type, "text/event-stream");
  ASSERT_EQ(part.events.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(part.events[i].id, std::to_string(i + 1));
    json e = json::parse(part.events[i].data);
    EXPECT_EQ(e["seq"], i + 1);
    EXPECT_EQ(e["type"], part.events[i].event);
  }
  EXPECT_FALSE(part.ended);

  // Resuming from Last-Event-ID gives the rest, in order, each once, then `end`.
  auto h = bearer(viewer);
  h["Last-Event-ID"] = "3";
  auto rest =
      read_sse(serve.port(), "/api/runs/" + rid + "/events/stream", h, 10000, std::chrono::seconds(60));
  EXPECT_EQ(rest.status, 200);
  EXPECT_TRUE(rest.ended);
  ASSERT_FALSE(rest.events.empty());
  for (size_t i = 0; i < rest.events.size(); ++i) EXPECT_EQ(rest.events[i].id, std::to_string(i + 4));
  EXPECT_EQ(rest.events.back().event, "RUN_SEALED");
  // Exactly the run's event log.
  std::vector<std::string> logged;
  std::ifstream in(p.dir / ".runtime-cache/cortexpilot/runs" / rid / "events.jsonl");
  std::string line;
  while (std::getline(in, line)) logged.push_back(line);
  ASSERT_EQ(logged.size(), 3 + rest.events.size());
  for (size_t i = 0; i < rest.events.size(); ++i) EXPECT_EQ(rest.events[i].data, logged[i + 3]);

  // A finished run streams its whole log, then ends; unknown runs and anonymous readers are refused.
  auto replay = read_sse(serve.port(), "/api/runs/" + rid + "/events/stream", bearer(viewer), 10000,
                         std::chrono::seconds(10));
  EXPECT_TRUE(replay.ended);
  EXPECT_EQ(replay.events.size(), logged.size());
  EXPECT_EQ(http(serve.port(), "GET", "/api/runs/nope/events/stream", bearer(viewer)).status, 404);
  EXPECT_EQ(http(serve.port(), "GET", "/api/runs/" + rid + "/events/stream").status, 401);
}

TEST(ServeApi, OpenReadsOnlyOnLoopbackAndOneServePerRoot) {
  RunProject p;
  Ran refused = host({"--root", p.dir.path().string(), "serve", "--listen", "0.0.0.0:0", "--open-reads"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("loopback"), std::string::npos) << refused.err;

  ServeProcess serve(p, {"--open-reads", "--repo", p.repo.string()});
  ASSERT_NE(serve.port(), 0) << serve.output();
  EXPECT_EQ(http(serve.port(), "GET", "/api/runs").status, 200);
  EXPECT_EQ(http(serve.port(), "GET", "/api/queue").status, 200);
  // Writes still need a token.
  EXPECT_EQ(http(serve.port(), "POST", "/api/runs", {}, p.contract({"true"}).dump()).status, 401);

  Ran second = host({"--root", p.dir.path().string(), "serve", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(second.exit_code, 10) << second.err;
  EXPECT_NE(second.err.find("another cp-host serve"), std::string::npos) << second.err;
  EXPECT_EQ(serve.stop(), 0);
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/serve.json"));
}

TEST(ServeApi, SlowClientsAreCutOff) {
  RunProject p;
  ServeProcess serve(p, {"--open-reads", "--no-scheduler", "--header-timeout", "1"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  // Headers that never end: 408, then the connection is closed; the server keeps answering others.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(serve.port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string partial = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL), static_cast<ssize_t>(partial.size()));
  auto t0 = std::chrono::steady_clock::now();
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256] = {};
  ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
  auto waited = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf).rfind("HTTP/1.1 408", 0), 0u) << buf;
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(http(serve.port(), "GET", "/api/health").status, 200);
}

TEST(ServeApi, BadTokenFileIsRefusedWithItsPointer) {
  RunProject p;
  write_file(p.dir / "tokens.json",
             R"({"schema_version": 1, "tokens": [{"id": "x", "role": "root", "sha256": "ab"}]})");
  Ran r = host({"--root", p.dir.path().string(), "serve", "--listen", "127.0.0.1:0", "--tokens",
                (p.dir / "tokens.json").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/tokens/0/"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cp::test
