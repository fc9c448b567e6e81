// Retention over the API against a real `cp-host serve`: a viewer reads the plan by lane (the same plan as
// `cp-host retention plan --json`; nothing deleted); an admin's apply deletes only what the fresh plan lists
// and, when paths are named, only those; a path outside the plan (a traversal included) is skipped and its
// target left; operators and viewers cannot apply; each apply is a RETENTION_APPLIED host event.
#include "integration/serve_fixture.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

namespace cp::test {
namespace {

void age_tree(const fs::path& p, double days) {
  timespec ts[2];
  ::clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= static_cast<time_t>(days * 86400);
  ts[1] = ts[0];
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(p, ec))
    ::utimensat(AT_FDCWD, e.path().c_str(), ts, AT_SYMLINK_NOFOLLOW);
  ::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

std::vector<json> jsonl(const fs::path& f) {
  std::vector<json> out;
  std::istringstream in(read_file(f));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::set<std::string> names(const json& list) {
  std::set<std::string> s;
  for (const auto& x : list) s.insert(x.is_string() ? x.get<std::string>() : x["path"].get<std::string>());
  return s;
}

struct ServeRetention : ::testing::Test {
  RunProject p;
  std::string viewer, op, admin;
  fs::path rc = p.dir / ".runtime-cache";
  fs::path runs = rc / "cortexpilot/runs";
  std::string first_id;
  std::unique_ptr<ServeProcess> serve;

  void SetUp() override {
    write_file(p.dir / "policies/retention_policy.json",
               json{{"policy", "retention_policy"},
                    {"version", 1},
                    {"lanes", {{"runs", {{"ttl_days", 1}}}, {"cache", {{"ttl_days", 1}}}}},
                    {"protected_patterns", json::array()}}
                   .dump(2));
    // Old runs: a real one and copies of it; one awaits approval (held).
    auto first = p.run(p.contract({"true"}));
    ASSERT_FALSE(first.bundle.empty()) << first.ran.err;
    first_id = first.manifest["run_id"];
    for (const auto& [id, status] : std::vector<std::pair<std::string, std::string>>{
             {"old-a", "sealed"}, {"old-b", "sealed"}, {"waiting", "awaiting_approval"}}) {
      fs::copy(first.bundle, runs / id, fs::copy_options::recursive);
      json m = first.manifest;
      m["run_id"] = id;
      m["status"] = status;
      write_file(runs / id / "manifest.json", m.dump());
      age_tree(runs / id, 5);
    }
    age_tree(first.bundle, 5);
    write_file(rc / "cache/build/stale/f", std::string(100, 'x'));
    age_tree(rc / "cache/build/stale", 5);
    // Something outside every lane that a crafted path would reach.
    write_file(p.dir / "precious.txt", "keep");
    viewer = add_token(p, "dash", "viewer");
    op = add_token(p, "ops", "operator");
    admin = add_token(p, "root-admin", "admin");
    serve = std::make_unique<ServeProcess>(
        p, std::vector<std::string>{"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
    ASSERT_NE(serve->port(), 0) << serve->output();
  }
  HttpResponse get(const std::string& target, const std::string& token) {
    return http(serve->port(), "GET", target, bearer(token));
  }
  HttpResponse post(const std::string& target, const std::string& body, const std::string& token) {
    auto h = bearer(token);
    h["Content-Type"] = "application/json";
    return http(serve->port(), "POST", target, h, body);
  }
  std::vector<json> retention_events() {
    std::vector<json> out;
    for (auto& e : jsonl(rc / "cortexpilot/host-events.jsonl"))
      if (e["type"] == "RETENTION_APPLIED") out.push_back(e);
    return out;
  }
};

TEST_F(ServeRetention, AViewerReadsThePlanByLaneAndNothingGoes) {
  auto r = get("/api/retention/plan", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  json plan = json::parse(r.body);
  expect_valid("retention_report", plan, "the plan");
  EXPECT_EQ(plan["mode"], "plan");
  EXPECT_EQ(names(plan["lanes"]["runs"]["candidates"]), (std::set<std::string>{"old-a", "old-b", first_id}));
  std::map<std::string, std::string> held;
  for (const auto& h : plan["lanes"]["runs"]["held"]) held[h["path"]] = h["reason"];
  EXPECT_EQ(held["waiting"], "awaiting approval");
  EXPECT_EQ(names(plan["lanes"]["cache"]["candidates"]), (std::set<std::string>{"build/stale"}));
  EXPECT_TRUE(fs::exists(runs / "old-a/manifest.json")) << "a plan deletes nothing";
  // The CLI's plan is the same plan.
  Ran cli = host({"--root", p.dir.path().string(), "retention", "plan", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  json cli_plan = json::parse(cli.out);
  for (const char* lane : {"runs", "cache"})
    EXPECT_EQ(names(cli_plan["lanes"][lane]["candidates"]), names(plan["lanes"][lane]["candidates"])) << lane;

  r = get("/api/retention/plan?lanes=cache", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  plan = json::parse(r.body);
  EXPECT_EQ(plan["lanes"].size(), 1u);
  EXPECT_TRUE(plan["lanes"].contains("cache"));
  r = get("/api/retention/plan?lanes=cache,nope", viewer);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["details"]["parameter"], "lanes");
  EXPECT_EQ(http(serve->port(), "GET", "/api/retention/plan").status, 401);

  // A broken policy is the server's state to fix: 409 saying where.
  write_file(p.dir / "policies/retention_policy.json", R"({"policy": "retention_policy", "lanes": 3})");
  r = get("/api/retention/plan", viewer);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "retention_policy");
  EXPECT_NE(r.body.find("retention_policy.json"), std::string::npos);
}

TEST_F(ServeRetention, AnAdminAppliesOnlyWhatThePlanListsAndWhatWasChosen) {
  // Neither a viewer nor an operator may apply; nothing goes.
  EXPECT_EQ(post("/api/retention/apply", "", viewer).status, 403);
  EXPECT_EQ(post("/api/retention/apply", "", op).status, 403);
  EXPECT_TRUE(fs::exists(runs / "old-a"));
  EXPECT_TRUE(retention_events().empty());

  // Bad bodies say where.
  for (const auto& [body, pointer] : std::vector<std::pair<std::string, std::string>>{
           {R"({"lanes": ["runs", "nope"]})", "/lanes/1"},
           {R"({"paths": {"runs": "old-a"}})", "/paths/runs"},
           {R"({"paths": {"nope": ["x"]}})", "/paths/nope"},
           {R"({"lanes": ["cache"], "paths": {"runs": ["old-a"]}})", "/paths/runs"},
           {R"({"what": 1})", "/what"}}) {
    auto r = post("/api/retention/apply", body, admin);
    EXPECT_EQ(r.status, 422) << body << ": " << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["details"]["pointer"], pointer) << body;
  }
  EXPECT_TRUE(fs::exists(runs / "old-a"));

  // Chosen paths: old-a goes; a path the plan does not list (a traversal among them) is skipped; old-b, the
  // other candidate, and the cache lane (not chosen) stay.
  auto r = post(
      "/api/retention/apply",
      R"({"paths": {"runs": ["old-a", "../../../precious.txt", "waiting"]}, "reason": "disk full"})", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  json rep = json::parse(r.body);
  expect_valid("retention_report", rep, "the apply report");
  EXPECT_EQ(rep["mode"], "apply");
  EXPECT_EQ(names(rep["lanes"]["runs"]["deleted"]), (std::set<std::string>{"old-a"}));
  EXPECT_EQ(names(rep["lanes"]["runs"]["skipped"]),
            (std::set<std::string>{"../../../precious.txt", "waiting"}));
  EXPECT_FALSE(rep["lanes"].contains("cache")) << "only the lanes paths were chosen in are planned";
  EXPECT_FALSE(fs::exists(runs / "old-a"));
  EXPECT_TRUE(fs::exists(runs / "old-b"));
  EXPECT_TRUE(fs::exists(runs / "waiting")) << "held: awaiting approval";
  EXPECT_TRUE(fs::exists(rc / "cache/build/stale/f"));
  EXPECT_EQ(read_file(p.dir / "precious.txt"), "keep");
  auto events = retention_events();
  ASSERT_EQ(events.size(), 1u);
  json payload = events[0]["payload"];
  EXPECT_EQ(payload["by"], "root-admin");
  EXPECT_EQ(payload["by_kind"], "token");
  EXPECT_EQ(payload["reason"], "disk full");
  EXPECT_EQ(payload["deleted"], 1);
  EXPECT_EQ(payload["lanes"]["runs"]["deleted"], 1);
  EXPECT_EQ(payload["lanes"]["runs"]["skipped"], 2);
  expect_valid("event", events[0], "the host event");
  // The run list drops the deleted run once the catalogue catches up.
  EXPECT_TRUE(wait_until(
      [&] {
        json page = json::parse(get("/api/runs?limit=100", viewer).body);
        for (const auto& run : page["runs"])
          if (run["run_id"] == "old-a") return false;
        return true;
      },
      std::chrono::seconds(10)));

  // No body: the whole fresh plan, every lane.
  r = post("/api/retention/apply", "", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  rep = json::parse(r.body);
  EXPECT_EQ(names(rep["lanes"]["runs"]["deleted"]), (std::set<std::string>{"old-b", first_id}));
  EXPECT_EQ(names(rep["lanes"]["cache"]["deleted"]), (std::set<std::string>{"build/stale"}));
  EXPECT_EQ(rep["totals"]["deleted"], 3);
  EXPECT_TRUE(fs::exists(runs / "waiting"));
  EXPECT_EQ(retention_events().size(), 2u);
  // Nothing left to delete: nothing recorded.
  r = post("/api/retention/apply", "", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["totals"]["deleted"], 0);
  EXPECT_EQ(retention_events().size(), 2u);
}

}  // namespace
}  // namespace cp::test
