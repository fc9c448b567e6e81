// Chains over the API against a real `cp-host serve`, with real chains (the shipped greeting loop, tool
// runners): the list holds chain executions only, newest first, paged; one chain reads step by step in its
// file's order with each step's run, the handoff before it, the reviewers' votes and the quorum; a chain
// that stopped shows the steps it never ran; a chain still running shows the step it is on and that step's
// run; `cp-host chain show` prints the same view.
#include "integration/serve_fixture.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

namespace cp::test {
namespace {

struct ServeChains : ::testing::Test {
  RunProject p;
  fs::path chain_dir = p.dir / "contracts/chain";
  std::string viewer;

  void SetUp() override {
    fs::create_directories(chain_dir);
    fs::copy(fs::path(CP_SOURCE_DIR) / "contracts/examples/chain", chain_dir, fs::copy_options::recursive);
    viewer = add_token(p, "dash", "viewer");
  }
  json step(const std::string& file) const { return json::parse(read_file(chain_dir / file)); }
  void put(const std::string& file, const json& doc) const { write_file(chain_dir / file, doc.dump(2)); }
  std::vector<std::string> chain_argv() const {
    return {CP_HOST_BIN,
            "--plugins",
            p.plugins.string(),
            "--root",
            p.dir.path().string(),
            "chain",
            "run",
            (chain_dir / "greeting-loop.chain.json").string(),
            "--repo",
            p.repo.string(),
            "--json",
            "--quiet"};
  }
  json run_chain() const {
    Ran r = run(chain_argv(), p.dir.path());
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("report")) << r.out << r.err;
    return j;
  }
  json get(uint16_t port, const std::string& target, int want = 200) const {
    auto r = http(port, "GET", target, bearer(viewer));
    EXPECT_EQ(r.status, want) << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
};

const json& step_of(const json& view, const std::string& id) {
  for (const auto& s : view["steps"])
    if (s["step_id"] == id) return s;
  static const json none;
  ADD_FAILURE() << "no step " << id;
  return none;
}

TEST_F(ServeChains, ChainsAreListedAndReadStepByStepWithHandoffsAndVotes) {
  // A chain whose third reviewer votes against (2 of 3 meet the quorum of 2), then one whose worker fails.
  json r3 = step("review-3.json");
  r3["acceptance_tests"][0]["cmd"] = "grep -q Bonjour src/greeting.sh";
  put("review-3.json", r3);
  json ok = run_chain();
  ASSERT_EQ(ok["exit_code"], 0) << ok.dump(2);
  json worker = step("worker.json");
  worker["runtime_options"]["commands"] = json::array({"sed -i s/Helo/Hola/ src/greeting.sh"});
  put("worker.json", worker);
  json failed = run_chain();
  ASSERT_EQ(failed["exit_code"], 4) << failed.dump(2);
  const std::string ok_id = ok["run_id"], failed_id = failed["run_id"];

  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
  ASSERT_NE(serve.port(), 0) << serve.output();

  // The list: chains only (not their 12 step runs), newest first, one page at a time.
  json list = get(serve.port(), "/api/chains");
  ASSERT_EQ(list["count"], 2) << list.dump(2);
  EXPECT_EQ(list["chains"][0]["run_id"], failed_id);
  EXPECT_EQ(list["chains"][1]["run_id"], ok_id);
  EXPECT_EQ(list["chains"][1]["chain_id"], "greeting-loop");
  EXPECT_EQ(list["chains"][1]["title"], "Fix the greeting through the full PM loop");
  EXPECT_EQ(list["chains"][1]["verdict"], "success");
  EXPECT_EQ(list["chains"][1]["kind"], "chain");
  EXPECT_EQ(list["chains"][0]["verdict"], "failure");
  json page = get(serve.port(), "/api/chains?limit=1");
  ASSERT_EQ(page["count"], 1);
  ASSERT_TRUE(page["next_cursor"].is_string());
  page = get(serve.port(), "/api/chains?limit=1&cursor=" + page["next_cursor"].get<std::string>());
  EXPECT_EQ(page["chains"][0]["run_id"], ok_id);
  EXPECT_TRUE(page["next_cursor"].is_null());
  EXPECT_EQ(get(serve.port(), "/api/chains?verdict=failure")["count"], 1);
  json runs = get(serve.port(), "/api/runs?kind=chain");
  EXPECT_EQ(runs["count"], 2) << "GET /api/runs?kind=chain lists the same bundles";

  // One chain, step by step in the chain file's order.
  json v = get(serve.port(), "/api/chains/" + ok_id);
  json spec = step("greeting-loop.chain.json");
  ASSERT_EQ(v["steps"].size(), spec["steps"].size());
  for (size_t i = 0; i < spec["steps"].size(); ++i) {
    EXPECT_EQ(v["steps"][i]["step_id"], spec["steps"][i]["step_id"]);
    EXPECT_EQ(v["steps"][i]["kind"], spec["steps"][i]["kind"]);
    EXPECT_EQ(v["steps"][i]["state"], "done") << v["steps"][i].dump(2);
  }
  EXPECT_EQ(v["verdict"], "success");
  EXPECT_EQ(v["status"], "sealed");
  EXPECT_EQ(v["branch"], "cp-chain/" + ok_id);
  EXPECT_TRUE(v["lifecycle"]["closed"].get<bool>());
  EXPECT_EQ(v["result"], ok["report"]["result"]);
  // Each task step's run is the one the chain report names, as its own manifest says now.
  std::map<std::string, std::vector<std::string>> report_runs;
  for (const auto& s : ok["report"]["steps"])
    for (const auto& id : s["run_ids"]) report_runs[s["step_id"]].push_back(id);
  const json& w = step_of(v, "worker");
  ASSERT_EQ(w["runs"].size(), 1u);
  EXPECT_EQ(w["runs"][0]["run_id"], report_runs["worker"][0]);
  EXPECT_EQ(w["runs"][0]["runner"], "tool");
  EXPECT_EQ(w["runs"][0]["status"], "sealed");
  EXPECT_EQ(w["runs"][0]["verdict"], "success");
  EXPECT_EQ(w["verdict"], "success");
  EXPECT_EQ(w["role"], "WORKER");
  EXPECT_FALSE(w["commit"].get<std::string>().empty()) << "the worker's change moved the chain branch";
  // The handoff before it, with the run of the step before the handoff.
  EXPECT_EQ(w["handoff_in"]["step_id"], "tl-to-worker");
  EXPECT_EQ(w["handoff_in"]["summary"], spec["steps"][3]["summary"]);
  EXPECT_EQ(w["handoff_in"]["previous_run_id"], report_runs["tl-design"][0]);
  EXPECT_TRUE(step_of(v, "pm-intake")["handoff_in"].is_null());
  const json& h = step_of(v, "worker-to-review");
  EXPECT_EQ(h["handoff"]["from_role"], "WORKER");
  EXPECT_EQ(h["handoff"]["to_role"], "REVIEWER");
  EXPECT_EQ(h["handoff"]["risks"], spec["steps"][5]["risks"]);
  // The review: three reviewers in order, their votes, the quorum.
  const json& rv = step_of(v, "review");
  ASSERT_EQ(rv["runs"].size(), 3u);
  std::vector<bool> votes;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rv["runs"][i]["reviewer"], i + 1);
    EXPECT_EQ(rv["runs"][i]["run_id"], report_runs["review"][i]);
    votes.push_back(rv["runs"][i]["approve"].get<bool>());
  }
  EXPECT_EQ(votes, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(rv["runs"][2]["verdict"], "failure");
  EXPECT_EQ(rv["quorum"]["approvals"], 2);
  EXPECT_EQ(rv["quorum"]["required"], 2);
  EXPECT_TRUE(rv["quorum"]["met"].get<bool>());
  EXPECT_EQ(rv["verdict"], "success");

  // The chain that stopped: the worker failed, and nothing after it ran.
  json f = get(serve.port(), "/api/chains/" + failed_id);
  EXPECT_EQ(step_of(f, "worker")["verdict"], "failure");
  EXPECT_EQ(step_of(f, "worker")["state"], "done");
  for (const char* later : {"worker-to-review", "review", "testing", "pm-accept"})
    EXPECT_EQ(step_of(f, later)["state"], "not_run") << later;
  EXPECT_TRUE(step_of(f, "review")["runs"].empty());
  EXPECT_TRUE(step_of(f, "review")["quorum"].is_null());

  // What is no chain is said so.
  json err = get(serve.port(), "/api/chains/" + report_runs["worker"][0], 404);
  EXPECT_EQ(err["error"]["code"], "not_a_chain");
  EXPECT_NE(err["error"]["message"].get<std::string>().find(ok_id), std::string::npos) << "names its chain";
  EXPECT_EQ(get(serve.port(), "/api/chains/no-such-chain", 404)["error"]["code"], "not_found");
  EXPECT_EQ(http(serve.port(), "GET", "/api/chains/bad%20id", bearer(viewer)).status, 400);
  EXPECT_EQ(http(serve.port(), "GET", "/api/chains").status, 401);

  // The CLI twin prints the same view.
  Ran cli = host({"--root", p.dir.path().string(), "chain", "show", ok_id, "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(json::parse(cli.out), v);
  Ran listed = host({"--root", p.dir.path().string(), "chain", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(json::parse(listed.out)["count"], 2);
  EXPECT_EQ(host({"--root", p.dir.path().string(), "chain", "show", report_runs["worker"][0]}).exit_code, 1);
}

TEST_F(ServeChains, ARunningChainShowsTheStepItIsOnAndThatStepsRun) {
  json worker = step("worker.json");
  worker["runtime_options"]["commands"] = json::array({"sleep 120"});
  put("worker.json", worker);
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  auto args = chain_argv();
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* out = std::freopen("/dev/null", "w", stdout);
    (void)out;
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  std::string chain_id;
  json v;
  bool seen = wait_until(
      [&] {
        json list =
            json::parse(http(serve.port(), "GET", "/api/chains", bearer(viewer)).body, nullptr, false);
        if (!list.is_object() || list.value("count", 0) != 1) return false;
        chain_id = list["chains"][0]["run_id"];
        v = json::parse(http(serve.port(), "GET", "/api/chains/" + chain_id, bearer(viewer)).body, nullptr,
                        false);
        if (!v.is_object() || !v.contains("steps")) return false;
        const json& w = step_of(v, "worker");
        return w["state"] == "running" && w["runs"].size() == 1 && w["runs"][0]["status"] == "running";
      },
      std::chrono::seconds(90));
  ::kill(pid, SIGTERM);
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  ASSERT_TRUE(seen) << v.dump(2);
  EXPECT_EQ(v["status"], "running");
  EXPECT_TRUE(v["verdict"].is_null());
  EXPECT_EQ(step_of(v, "pm-intake")["state"], "done");
  EXPECT_EQ(step_of(v, "tl-to-worker")["state"], "done");
  EXPECT_EQ(step_of(v, "review")["state"], "pending");
  const std::string worker_run = step_of(v, "worker")["runs"][0]["run_id"];
  // The run the view named is the worker's, linked to this chain.
  json m = json::parse(read_file(p.dir / ".runtime-cache/cortexpilot/runs" / worker_run / "manifest.json"));
  EXPECT_EQ(m["chain"]["run_id"], chain_id);
  EXPECT_EQ(m["chain"]["step_id"], "worker");
  // Stopped, the chain is sealed cancelled, and the worker's run with it.
  json after;
  EXPECT_TRUE(wait_until(
      [&] {
        after = json::parse(http(serve.port(), "GET", "/api/chains/" + chain_id, bearer(viewer)).body);
        return after["status"] == "sealed";
      },
      std::chrono::seconds(30)))
      << after.dump(2);
  EXPECT_EQ(after["verdict"], "cancelled");
  EXPECT_EQ(step_of(after, "worker")["runs"][0]["verdict"], "cancelled");
  EXPECT_EQ(step_of(after, "review")["state"], "not_run");
}

}  // namespace
}  // namespace cp::test
