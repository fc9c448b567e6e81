// Task chains end to end: `cp-host chain run` over the shipped example chain (PM -> TECH_LEAD -> WORKER ->
// REVIEWER x3 -> TESTING -> TECH_LEAD -> PM), with the WORKER played by the fake codex CLI and the
// TECH_LEAD's sign-off by the fake claude CLI; quorum met and missed; a failing worker step; a chain that
// breaks its own rules refused before anything runs.
#include "integration/run_project.hpp"

#include <cstdlib>
#include <map>

using namespace cp::test;

namespace {

struct ChainProject : RunProject {
  fs::path chain_dir;
  ChainProject() {
    chain_dir = dir / "contracts/chain";
    fs::create_directories(chain_dir);
    fs::copy(fs::path(CP_SOURCE_DIR) / "contracts/examples/chain", chain_dir, fs::copy_options::recursive);
  }
  json step(const std::string& file) const { return json::parse(read_file(chain_dir / file)); }
  void put(const std::string& file, const json& doc) const { write_file(chain_dir / file, doc.dump(2)); }
  json chain() const { return step("greeting-loop.chain.json"); }

  struct Out {
    Ran ran;
    json j;
    json report;
    fs::path bundle;
  };
  Out run_chain(const std::vector<std::string>& env = {}) const {
    std::string path =
        std::string(CP_SOURCE_DIR) + "/tests/fakes:" + (std::getenv("PATH") ? std::getenv("PATH") : "");
    std::vector<std::string> e{"PATH=" + path, "FAKE_CODEX_SCENARIO=success", "FAKE_CLAUDE_SCENARIO=success"};
    e.insert(e.end(), env.begin(), env.end());
    Out o;
    o.ran = run_env(
        {CP_HOST_BIN, "--plugins", plugins.string(), "--root", dir.path().string(), "chain", "run",
         (chain_dir / "greeting-loop.chain.json").string(), "--repo", repo.string(), "--json", "--quiet"},
        e, dir.path());
    o.j = json::parse(o.ran.out, nullptr, false);
    if (o.j.is_object() && o.j.contains("report")) o.report = o.j["report"];
    if (o.j.is_object() && o.j.contains("bundle")) {
      o.bundle = o.j["bundle"].get<std::string>();
      if (o.bundle.is_relative()) o.bundle = dir.path() / o.bundle;
    }
    return o;
  }
  std::vector<json> events(const fs::path& bundle) const {
    std::vector<json> ev;
    std::ifstream in(bundle / "events.jsonl");
    std::string line;
    while (std::getline(in, line)) ev.push_back(json::parse(line));
    return ev;
  }
  json manifest_of(const std::string& run_id) const {
    return json::parse(read_file(dir / ".runtime-cache/cortexpilot/runs" / run_id / "manifest.json"));
  }
  // Task ids of every run bundle (steps and the chain itself).
  std::vector<std::string> task_ids() const {
    std::vector<std::string> out;
    fs::path runs = dir / ".runtime-cache/cortexpilot/runs";
    if (!fs::exists(runs)) return out;
    for (const auto& e : fs::directory_iterator(runs))
      if (e.path().filename().string()[0] != '.')
        out.push_back(json::parse(read_file(e.path() / "manifest.json"))["task_id"]);
    return out;
  }
};

std::vector<std::string> types_of(const std::vector<json>& ev) {
  std::vector<std::string> t;
  for (const auto& e : ev) t.push_back(e["type"]);
  return t;
}

void expect_chain_bundle_valid(const ChainProject& p, const ChainProject::Out& o) {
  json m = json::parse(read_file(o.bundle / "manifest.json"));
  expect_valid("run_manifest", m, "chain manifest");
  expect_valid("task_chain", json::parse(read_file(o.bundle / "contract.json")), "chain contract.json");
  expect_valid("chain_report", o.report, "chain_report");
  EXPECT_EQ(json::parse(read_file(o.bundle / "reports/chain_report.json")), o.report);
  for (const auto& e : p.events(o.bundle)) expect_valid("event", e, "chain event");
  Ran v = p.runs({"verify", m["run_id"]});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(m["kind"], "chain");
  EXPECT_EQ(m["status"], "sealed");
}

}  // namespace

TEST(Chain, FullLoopWithFakeAgentsThroughEveryRole) {
  ChainProject p;
  // Fake agents play the roles after the planning: codex the WORKER, two REVIEWERs and the PM's acceptance,
  // claude the TESTING and the TECH_LEAD's sign-off. (The planning steps stay on the tool runner: the fake
  // agents only know how to fix the greeting, which is the WORKER's job, not the PM's.) After the WORKER, an
  // agent's fix is already there, so the later agents change nothing and their acceptance tests judge the
  // WORKER's result, which the chain branch carries forward.
  auto agent = [&](const std::string& file, const std::string& runner) {
    json c = p.step(file);
    c["runtime_options"] = {{"runner", runner}, {"pack", "low"}};
    c["assigned_agent"]["agent_id"] = runner + "-" + c["assigned_agent"]["role"].get<std::string>();
    c["allowed_paths"] = json::array({"src/"});
    p.put(file, c);
  };
  agent("worker.json", "codex");
  agent("review-1.json", "codex");
  agent("review-2.json", "codex");
  agent("testing.json", "claude");
  agent("tl-signoff.json", "claude");
  agent("pm-accept.json", "codex");
  // One reviewer votes against: 2 of 3 still meets the quorum of 2.
  json r3 = p.step("review-3.json");
  r3["acceptance_tests"][0]["cmd"] = "grep -q Bonjour src/greeting.sh";
  p.put("review-3.json", r3);

  auto o = p.run_chain();
  ASSERT_EQ(o.ran.exit_code, 0) << o.ran.out << o.ran.err;
  expect_chain_bundle_valid(p, o);
  const json& rep = o.report;
  EXPECT_EQ(rep["verdict"], "success");
  const json& life = rep["lifecycle"];
  EXPECT_TRUE(life["closed"].get<bool>());
  EXPECT_EQ(life["observed_roles"],
            json::array({"PM", "TECH_LEAD", "WORKER", "REVIEWER", "TESTING", "TECH_LEAD", "PM"}));
  ASSERT_EQ(life["quorum"].size(), 1u);
  EXPECT_EQ(life["quorum"][0]["approvals"], 2);
  EXPECT_EQ(life["quorum"][0]["required"], 2);
  EXPECT_EQ(life["quorum"][0]["reviewers"], 3);
  EXPECT_TRUE(life["quorum"][0]["met"].get<bool>());
  for (const auto& [step, verdict] : life["step_verdicts"].items()) EXPECT_EQ(verdict, "success") << step;

  // Events: six handoffs marked in order, then the lifecycle, then completion, then the seal.
  auto types = types_of(p.events(o.bundle));
  EXPECT_EQ(std::count(types.begin(), types.end(), "CHAIN_HANDOFF_STEP_MARKED"), 6);
  auto at = [&](const char* t) { return std::find(types.begin(), types.end(), t) - types.begin(); };
  EXPECT_LT(at("CHAIN_HANDOFF_STEP_MARKED"), at("CHAIN_LIFECYCLE_EVALUATED"));
  EXPECT_LT(at("CHAIN_LIFECYCLE_EVALUATED"), at("CHAIN_COMPLETED"));
  EXPECT_EQ(types.back(), "RUN_SEALED");
  for (const auto& h : rep["handoffs"]) EXPECT_EQ(h["contract_rewritten"], false);
  EXPECT_EQ(rep["handoffs"][0]["summary"], p.chain()["steps"][1]["summary"]);

  // Every step is a run of its own, linked to the chain, and ran its contract as written.
  std::set<std::string> runners;
  for (const auto& s : rep["steps"])
    for (const auto& id : s["run_ids"]) {
      json m = p.manifest_of(id);
      EXPECT_EQ(m["chain"]["run_id"], o.j["run_id"]);
      EXPECT_EQ(m["chain"]["step_id"], s["step_id"]);
      EXPECT_EQ(m["role_binding_summary"]["assigned"]["role"], s["role"]);
      runners.insert(m["runner"].get<std::string>());
      Ran v = p.runs({"verify", id});
      EXPECT_EQ(v.exit_code, 0) << v.out;
    }
  EXPECT_EQ(runners, (std::set<std::string>{"tool", "codex", "claude"}));
  // Every role after the planning was played by a fake agent, whose stream was normalised into usage.
  std::map<std::string, std::string> runner_of_role;
  for (const auto& s : rep["steps"])
    for (const auto& id : s["run_ids"]) {
      json m = p.manifest_of(id);
      runner_of_role[s["step_id"].get<std::string>() + "/" + m["runner"].get<std::string>()] = s["role"];
      if (m["runner"] != "tool") {
        EXPECT_GT(m["usage"].value("output_tokens", 0), 0) << id;
      }
      EXPECT_TRUE(m["role_binding_summary"]["assigned"]["runner_allowed"].get<bool>()) << id;
    }
  for (const char* k :
       {"worker/codex", "review/codex", "testing/claude", "tl-signoff/claude", "pm-accept/codex"})
    EXPECT_TRUE(runner_of_role.count(k)) << k;

  // The chain branch carries every step's change, one commit each; the user's branch did not move.
  std::string branch = rep["result"]["branch"];
  Ran show = sh("git show " + branch + ":src/greeting.sh && git show " + branch + ":docs/PLAN.md", p.repo);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("Hello, world"), std::string::npos);
  EXPECT_NE(show.out.find("design: replace Helo"), std::string::npos);
  EXPECT_EQ(sh("git rev-list --count main.." + branch, p.repo).out, "3\n");
  EXPECT_NE(read_file(p.repo / "src/greeting.sh").find("Helo,"), std::string::npos);
  // The chain's workflow case lists the chain and its linked step runs.
  json k =
      json::parse(read_file(p.dir / ".runtime-cache/cortexpilot/workflow-cases/greeting-loop/case.json"));
  expect_valid("workflow_case", k, "case.json");
  EXPECT_EQ(k["run_count"], 10);  // 9 step runs + the chain
}

TEST(Chain, QuorumNotMetStopsTheChainBeforeTesting) {
  ChainProject p;
  for (const char* f : {"review-2.json", "review-3.json"}) {
    json r = p.step(f);
    r["acceptance_tests"][0]["cmd"] = "grep -q Bonjour src/greeting.sh";
    p.put(f, r);
  }
  auto o = p.run_chain();
  EXPECT_EQ(o.ran.exit_code, 4) << o.ran.out << o.ran.err;
  expect_chain_bundle_valid(p, o);
  const json& q = o.report["lifecycle"]["quorum"][0];
  EXPECT_EQ(q["approvals"], 1);
  EXPECT_FALSE(q["met"].get<bool>());
  EXPECT_FALSE(o.report["lifecycle"]["closed"].get<bool>());
  EXPECT_EQ(o.report["lifecycle"]["failed_step"]["step_id"], "review");
  json incident = json::parse(read_file(o.bundle / "reports/incident_pack.json"));
  expect_valid("incident_pack", incident, "chain incident_pack");
  EXPECT_EQ(incident["failed_step"]["step_id"], "review");
  EXPECT_NE(incident["reason"].get<std::string>().find("quorum not met"), std::string::npos);
  auto ids = p.task_ids();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "greeting-testing"), 0);   // the chain stopped
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "greeting-review-3"), 1);  // every reviewer voted
}

TEST(Chain, AFailingWorkerStepStopsTheChainWithAnIncidentNamingIt) {
  ChainProject p;
  json worker = p.step("worker.json");
  worker["runtime_options"]["commands"] = json::array({"sed -i s/Helo/Hola/ src/greeting.sh"});
  p.put("worker.json", worker);
  auto o = p.run_chain();
  EXPECT_EQ(o.ran.exit_code, 4) << o.ran.out << o.ran.err;
  expect_chain_bundle_valid(p, o);
  EXPECT_EQ(o.report["verdict"], "failure");
  EXPECT_EQ(o.report["steps"].size(), 3u);  // PM, TECH_LEAD, then the failed WORKER
  EXPECT_EQ(o.report["steps"][2]["verdict"], "failure");
  json incident = json::parse(read_file(o.bundle / "reports/incident_pack.json"));
  EXPECT_EQ(incident["failed_step"]["step_id"], "worker");
  EXPECT_EQ(incident["failed_step"]["role"], "WORKER");
  ASSERT_FALSE(incident["failed_gates"].empty());
  EXPECT_EQ(incident["failed_gates"][0]["gate_id"], "acceptance_tests");
  auto types = types_of(p.events(o.bundle));
  EXPECT_EQ(std::count(types.begin(), types.end(), "CHAIN_HANDOFF_STEP_MARKED"), 2);
  EXPECT_EQ(types.back(), "RUN_SEALED");
  // The failed change never reached the chain branch.
  std::string branch = "cp-chain/" + o.j["run_id"].get<std::string>();
  EXPECT_NE(sh("git show " + branch + ":src/greeting.sh", p.repo).out.find("Helo,"), std::string::npos);
}

TEST(Chain, BrokenChainIsRefusedWithPointersAndRunsNothing) {
  ChainProject p;
  json c = p.chain();
  c["steps"][1]["to_role"] = "WORKER";         // the step after is TECH_LEAD's
  c["steps"][6]["quorum"] = 4;                 // only 3 reviewers
  c["steps"][4]["role"] = "REVIEWER";          // worker.json assigns WORKER
  c["steps"][8]["contract"] = "missing.json";  // no such file
  p.put("greeting-loop.chain.json", c);
  auto o = p.run_chain();
  EXPECT_EQ(o.ran.exit_code, 1) << o.ran.out;
  std::string err = o.ran.err;
  for (const char* ptr : {"/steps/1/to_role", "/steps/6/quorum", "/steps/4/role", "/steps/8/contract"})
    EXPECT_NE(err.find(ptr), std::string::npos) << ptr << " missing in:\n" << err;
  EXPECT_TRUE(p.task_ids().empty());
  // validate knows chains: the shipped one passes, a schema break is named by its pointer.
  Ran ok = host({"--root", p.dir.path().string(), "validate",
                 (fs::path(CP_SOURCE_DIR) / "contracts/examples/chain/greeting-loop.chain.json").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  json dance = p.chain();
  dance["steps"][0]["kind"] = "dance";
  write_file(p.dir / "dance.json", dance.dump(2));
  Ran bad = host({"--root", p.dir.path().string(), "validate", (p.dir / "dance.json").string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE((bad.out + bad.err).find("/steps/0"), std::string::npos) << bad.out << bad.err;
  json loopless = p.chain();
  loopless["steps"].erase(loopless["steps"].size() - 1);  // pm-accept
  loopless["steps"].erase(loopless["steps"].size() - 1);  // its handoff
  p.put("greeting-loop.chain.json", loopless);
  auto o2 = p.run_chain();
  EXPECT_EQ(o2.ran.exit_code, 1);
  EXPECT_NE(o2.ran.err.find("do not close the PM loop"), std::string::npos) << o2.ran.err;

  // validate checks a chain as `chain run` loads it, not only its schema: the broken chain above, and steps
  // that wait for each other, fail it in CI before anything is run.
  p.put("broken.chain.json", c);
  Ran broken =
      host({"--root", p.dir.path().string(), "validate", (p.chain_dir / "broken.chain.json").string()});
  EXPECT_EQ(broken.exit_code, 1) << broken.out << broken.err;
  for (const char* ptr : {"/steps/1/to_role", "/steps/6/quorum", "/steps/4/role", "/steps/8/contract"})
    EXPECT_NE((broken.out + broken.err).find(ptr), std::string::npos) << ptr << " missing in:\n"
                                                                      << broken.out;
  json cycle = p.chain();
  cycle["steps"][0]["depends_on"] = {"worker"};
  cycle["steps"][4]["depends_on"] = {"pm-intake"};
  p.put("cycle.chain.json", cycle);
  Ran cyc = host({"--root", p.dir.path().string(), "validate", "--format", "json",
                  (p.chain_dir / "cycle.chain.json").string()});
  EXPECT_EQ(cyc.exit_code, 1) << cyc.out << cyc.err;
  json report = json::parse(cyc.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << cyc.out;
  bool named = false;
  for (const auto& d : report["diagnostics"])
    named = named || (d["rule"] == "cycle" &&
                      d["file"].get<std::string>().find("cycle.chain.json") != std::string::npos);
  EXPECT_TRUE(named) << cyc.out;
  EXPECT_TRUE(p.task_ids().empty());
}

TEST(Chain, ChainRunTakesInlineContractsTheOrderAndContinueOnFail) {
  // The shared chain document, run in one process: inline contracts, a step that names a later one in
  // depends_on (so it runs after it), and a failing step allowed to fail.
  ChainProject p;
  auto inline_contract = [&](const std::string& task, const std::string& dir, const std::string& cmd) {
    json c = p.contract({cmd});
    c["task_id"] = task;
    c["allowed_paths"] = json::array({dir});
    c["required_outputs"] = json::array();
    c["acceptance_tests"] =
        json::array({{{"name", "ok"}, {"cmd", "true"}, {"must_pass", true}, {"timeout_sec", 60}}});
    c["runtime_options"]["pack"] = "low";
    return c;
  };
  p.commit("scripts/mk.sh", "mkdir -p \"$1\" && echo \"$1\" > \"$1/done.txt\"\n");
  p.commit("scripts/needs.sh",
           "test -f \"$2/done.txt\" && mkdir -p \"$1\" && echo \"$1\" > \"$1/done.txt\"\n");
  json chain{{"schema_version", 1},
             {"chain_id", "inline"},
             {"lifecycle", {{"require_pm_loop", false}}},
             {"steps",
              {{{"step_id", "second"},
                {"kind", "task"},
                {"role", "WORKER"},
                {"depends_on", {"first"}},
                {"contract", inline_contract("second", "s/", "sh scripts/needs.sh s f")}},
               {{"step_id", "first"},
                {"kind", "task"},
                {"role", "WORKER"},
                {"depends_on", json::array()},
                {"contract", inline_contract("first", "f/", "sh scripts/mk.sh f")}},
               {{"step_id", "flaky"},
                {"kind", "task"},
                {"role", "WORKER"},
                {"continue_on_fail", true},
                {"contract", inline_contract("flaky", "x/", "false")}},
               {{"step_id", "last"},
                {"kind", "task"},
                {"role", "WORKER"},
                {"contract", inline_contract("last", "l/", "sh scripts/needs.sh l s")}}}}};
  p.put("greeting-loop.chain.json", chain);
  auto o = p.run_chain();
  ASSERT_EQ(o.ran.exit_code, 0) << o.ran.out << o.ran.err;
  expect_chain_bundle_valid(p, o);
  std::vector<std::string> ran;
  for (const auto& s : o.report["steps"]) ran.push_back(s["step_id"]);
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "second", "flaky", "last"}));
  EXPECT_NE(o.report["steps"][2]["verdict"], "success");
  EXPECT_NE(o.report["reason"].get<std::string>().find("allowed to fail"), std::string::npos)
      << o.report["reason"];
  std::string branch = o.report["result"]["branch"];
  EXPECT_EQ(sh("git show " + branch + ":l/done.txt", p.repo).out, "l\n");
}
