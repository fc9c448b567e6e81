// The control-plane routes of `cp-host serve` over real HTTP: approvals (who is recorded, roles enforced,
// god-mode for admins only), evidence promotion into the repository, workflow cases, compare and intake
// preview. Runs are made with the CLI; the server decides on them.
#include "integration/serve_fixture.hpp"

using namespace cp::test;

namespace {

class ControlApi : public ::testing::Test {
 protected:
  void SetUp() override {
    json pack = json::parse(read_file(p.dir / "packs/high.json"));
    pack["approval"] = {{"approvers", 1}, {"deadline_sec", 3600}};
    write_file(p.dir / "packs/high.json", pack.dump(2));
    viewer = add_token(p, "ana-viewer", "viewer");
    op = add_token(p, "otto-operator", "operator");
    admin = add_token(p, "ada-admin", "admin");
    serve = std::make_unique<ServeProcess>(
        p, std::vector<std::string>{"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
    ASSERT_NE(serve->port(), 0) << serve->output();
  }

  std::string awaiting(const std::string& workflow = "wf-api") {
    json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
    c["runtime_options"]["pack"] = "high";
    c["workflow_id"] = workflow;
    auto r = p.run(c);
    EXPECT_EQ(r.ran.exit_code, 9) << r.ran.err;
    return r.manifest.value("run_id", "");
  }
  HttpResponse post(const std::string& path, const std::string& token, const json& body = json::object()) {
    auto h = bearer(token);
    h["Content-Type"] = "application/json";
    return http(serve->port(), "POST", path, h, body.dump());
  }
  HttpResponse get(const std::string& path, const std::string& token) {
    return http(serve->port(), "GET", path, bearer(token));
  }
  json manifest(const std::string& id) {
    return json::parse(read_file(p.dir / ".runtime-cache/cortexpilot/runs" / id / "manifest.json"));
  }

  RunProject p;
  std::string viewer, op, admin;
  std::unique_ptr<ServeProcess> serve;
};

}  // namespace

TEST_F(ControlApi, ApproveRecordsTheTokenAndPromoteMakesTheCommit) {
  std::string id = awaiting();
  auto list = get("/api/approvals", viewer);
  ASSERT_EQ(list.status, 200) << list.body;
  json l = json::parse(list.body);
  ASSERT_EQ(l["count"], 1);
  EXPECT_EQ(l["approvals"][0]["run_id"], id);
  EXPECT_FALSE(l["approvals"][0]["deadline"].get<std::string>().empty());
  EXPECT_EQ(l["approvals"][0]["approval_pack"]["kind"], "approval_pack");

  EXPECT_EQ(post("/api/runs/" + id + "/approve", viewer).status, 403);  // viewers read only
  EXPECT_EQ(http(serve->port(), "POST", "/api/runs/" + id + "/approve").status, 401);
  EXPECT_EQ(post("/api/runs/no-such-run/approve", op).status, 404);
  EXPECT_EQ(http(serve->port(), "POST", "/api/runs/" + id + "/approve", bearer(op), "[1,2]").status, 400);

  auto a = post("/api/runs/" + id + "/approve", op, {{"reason", "looks right"}});
  ASSERT_EQ(a.status, 200) << a.body;
  json aj = json::parse(a.body);
  EXPECT_EQ(aj["outcome"], "approved");
  EXPECT_EQ(aj["verdict"], "success");
  json d = manifest(id)["approval"]["decision"];
  EXPECT_EQ(d["by"], "otto-operator");
  EXPECT_EQ(d["by_kind"], "token");
  EXPECT_EQ(d["how"], "human");
  EXPECT_EQ(d["reason"], "looks right");
  EXPECT_EQ(post("/api/runs/" + id + "/approve", op).status, 409);  // already decided
  // The run detail shows the decision at once.
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = get("/api/runs?status=success", viewer);
        return r.status == 200 && r.body.find(id) != std::string::npos;
      },
      std::chrono::seconds(5)));

  EXPECT_EQ(post("/api/runs/" + id + "/evidence/promote", op, json::object()).status, 422);  // no branch
  EXPECT_EQ(post("/api/runs/" + id + "/evidence/promote", viewer, {{"branch", "cp/api"}}).status, 403);
  auto pr = post("/api/runs/" + id + "/evidence/promote", op, {{"branch", "cp/api"}, {"reason", "merge me"}});
  ASSERT_EQ(pr.status, 200) << pr.body;
  std::string commit = json::parse(pr.body)["evidence"]["commit"];
  Ran git = sh("git rev-parse cp/api && git show cp/api:src/greeting.sh", p.repo);
  EXPECT_EQ(git.out.substr(0, 40), commit);
  EXPECT_NE(git.out.find("Hello, world"), std::string::npos);
  EXPECT_EQ(manifest(id)["evidence"]["by"], "otto-operator");
  auto again = post("/api/runs/" + id + "/evidence/promote", op, {{"branch", "cp/api2"}});
  EXPECT_EQ(again.status, 409) << again.body;
}

TEST_F(ControlApi, GodModeIsForAdminsWithAReasonAndRejectDenies) {
  std::string id = awaiting();
  EXPECT_EQ(post("/api/runs/" + id + "/god-mode-approve", op, {{"reason", "x"}}).status, 403);
  auto no_reason = post("/api/runs/" + id + "/god-mode-approve", admin);
  EXPECT_EQ(no_reason.status, 422) << no_reason.body;
  EXPECT_EQ(manifest(id)["status"], "awaiting_approval");
  auto god = post("/api/runs/" + id + "/god-mode-approve", admin, {{"reason", "incident fix"}});
  ASSERT_EQ(god.status, 200) << god.body;
  json d = manifest(id)["approval"]["decision"];
  EXPECT_EQ(d["how"], "god_mode");
  EXPECT_EQ(d["by"], "ada-admin");
  EXPECT_EQ(d["reason"], "incident fix");

  std::string id2 = awaiting();
  auto rej = post("/api/runs/" + id2 + "/reject", op, {{"reason", "scope creep"}});
  ASSERT_EQ(rej.status, 200) << rej.body;
  json m = manifest(id2);
  EXPECT_EQ(m["verdict"], "denied");
  EXPECT_EQ(m["approval"]["decision"]["by"], "otto-operator");
  EXPECT_EQ(post("/api/runs/" + id2 + "/evidence/promote", op, {{"branch", "cp/no"}}).status, 409);
  auto ev = post("/api/runs/" + id2 + "/evidence/reject", op);
  EXPECT_EQ(ev.status, 200) << ev.body;
}

TEST_F(ControlApi, WorkflowsCompareAndPreview) {
  std::string a = awaiting("wf-two");
  ASSERT_EQ(post("/api/runs/" + a + "/approve", op).status, 200);
  std::string b = awaiting("wf-two");

  auto wl = get("/api/workflows", viewer);
  ASSERT_EQ(wl.status, 200);
  json w = json::parse(wl.body);
  ASSERT_EQ(w["count"], 1);
  EXPECT_EQ(w["workflows"][0]["run_count"], 2);
  EXPECT_EQ(w["workflows"][0]["latest_run_id"], b);
  auto wd = get("/api/workflows/wf-two", viewer);
  ASSERT_EQ(wd.status, 200);
  json k = json::parse(wd.body);
  expect_valid("workflow_case", k, "case over the API");
  EXPECT_EQ(k["workflow_case_read_model"]["latest_run_id"], b);
  EXPECT_EQ(get("/api/workflows/nope", viewer).status, 404);
  EXPECT_EQ(get("/api/workflows/..", viewer).status, 404);

  auto cmp = get("/api/runs/" + a + "/compare/" + b, viewer);
  ASSERT_EQ(cmp.status, 200) << cmp.body;
  json r = json::parse(cmp.body);
  expect_valid("run_compare_report", r, "compare over the API");
  EXPECT_EQ(r["verdict"]["a"], "success");
  EXPECT_EQ(r["verdict"]["b"], "awaiting_approval");
  EXPECT_TRUE(r["diff_stats"]["same_patch"].get<bool>());
  // A GET computes the report and stores nothing in the sealed bundle.
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs" / b / "reports/run_compare_report.json"));
  EXPECT_EQ(get("/api/runs/" + a + "/compare/missing-run", viewer).status, 404);

  size_t before = 0;
  for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/runs"))
    before += e.path().filename().string()[0] != '.';
  json c = p.contract({"true"});
  auto pv = post("/api/intake/preview", op, {{"contract", c}});
  ASSERT_EQ(pv.status, 200) << pv.body;
  json plan = json::parse(pv.body);
  expect_valid("execution_plan_report", plan, "preview over the API");
  EXPECT_EQ(plan["task_id"], "fix-greeting");
  EXPECT_EQ(post("/api/intake/preview", viewer, {{"contract", c}}).status, 403);
  c["allowed_paths"] = "src/";
  auto bad = post("/api/intake/preview", op, {{"contract", c}});
  EXPECT_EQ(bad.status, 422);
  EXPECT_NE(bad.body.find("/contract/allowed_paths"), std::string::npos) << bad.body;
  size_t after = 0;
  for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/runs"))
    after += e.path().filename().string()[0] != '.';
  EXPECT_EQ(after, before);  // previews create no run
  std::error_code ec;
  size_t leftovers = 0;
  for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/intake", ec)) {
    (void)e;
    ++leftovers;
  }
  EXPECT_EQ(leftovers, 0u);
}

TEST(ControlApiRace, ConcurrentDecisionsSealARunExactlyOnce) {
  RunProject p;
  json pack = json::parse(read_file(p.dir / "packs/high.json"));
  pack["approval"] = {{"approvers", 2}};
  write_file(p.dir / "packs/high.json", pack.dump(2));
  std::vector<std::string> ops;
  for (int i = 0; i < 4; ++i) ops.push_back(add_token(p, "op" + std::to_string(i), "operator"));
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler", "--threads", "4"});
  for (int round = 0; round < 3; ++round) {
    json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
    c["runtime_options"]["pack"] = "high";
    auto r = p.run(c);
    ASSERT_EQ(r.ran.exit_code, 9);
    std::string id = r.manifest["run_id"];
    // Three approvers and one rejecter at once.
    std::vector<std::thread> threads;
    std::vector<HttpResponse> answers(4);
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&, i] {
        auto h = bearer(ops[i]);
        answers[i] =
            http(serve.port(), "POST", "/api/runs/" + id + (i == 3 ? "/reject" : "/approve"), h, "{}");
      });
    for (auto& t : threads) t.join();
    int decisive = 0;
    for (const auto& a : answers) {
      ASSERT_TRUE(a.status == 200 || a.status == 409) << a.status << " " << a.body;
      if (a.status == 200) {
        std::string outcome = json::parse(a.body)["outcome"];
        decisive += outcome == "approved" || outcome == "rejected";
      }
    }
    EXPECT_EQ(decisive, 1) << "round " << round;
    std::vector<std::string> types;
    for (const auto& e : r.events()) types.push_back(e["type"]);
    EXPECT_EQ(std::count(types.begin(), types.end(), "APPROVAL_DECIDED"), 1);
    EXPECT_EQ(std::count(types.begin(), types.end(), "RUN_SEALED"), 1);
    EXPECT_LE(std::count(types.begin(), types.end(), "APPROVAL_RECORDED"), 3);
    json m = json::parse(read_file(r.bundle / "manifest.json"));
    EXPECT_EQ(m["status"], "sealed");
    EXPECT_EQ(m["events"]["count"], types.size());
    EXPECT_EQ(p.runs({"verify", id}).exit_code, 0);
    if (m["verdict"] == "success") {
      EXPECT_EQ(m["approval"]["approvals"].size(), 2u);
    }
  }
}

TEST(ControlApiDeadline, ServeDeniesOverdueApprovalsByItself) {
  RunProject p;
  json pack = json::parse(read_file(p.dir / "packs/high.json"));
  pack["approval"] = {{"deadline_sec", 1}};
  write_file(p.dir / "packs/high.json", pack.dump(2));
  std::string viewer = add_token(p, "v", "viewer");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["runtime_options"]["pack"] = "high";
  auto r = p.run(c);
  ASSERT_EQ(r.ran.exit_code, 9);
  fs::path man = r.bundle / "manifest.json";
  // Nobody asks: the server's own tick applies the default-deny.
  EXPECT_TRUE(wait_until([&] { return json::parse(read_file(man)).value("verdict", "") == "denied"; },
                         std::chrono::seconds(10)));
  EXPECT_EQ(json::parse(read_file(man))["approval"]["state"], "expired");
  auto list = http(serve.port(), "GET", "/api/approvals", bearer(viewer));
  EXPECT_EQ(json::parse(list.body)["count"], 0);
}
