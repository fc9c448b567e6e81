// Chains through the queue against a real `cp-host serve` (tool-runner runs, real git): a parallel group
// whose steps provably run at the same time and a step that starts only after both ended, continue_on_fail
// honoured and its absence ending the chain, an approval step that pauses the chain across a kill -9 of
// serve until a person approves through the API (each step once), a rejected approval ending the chain with
// an incident naming it, a cancel of a running chain, an invalid chain that queues nothing; and what a
// chain's own steps cannot do: escape their allowed_paths through the chain branch, approve a step.
//
// Overlap is proven by the steps' own marks, not by durations: each parallel step writes its start mark and
// then waits for a `go` file the test drops into its scratch folder only once both steps have started, so
// neither can end before both began.
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

namespace cp::test {
namespace {

using std::chrono::seconds;

struct ServeChainQueue : ::testing::Test {
  RunProject p;
  std::string op, viewer;
  std::unique_ptr<ServeProcess> serve;
  std::vector<std::string> serve_args;
  std::string main_head;

  void SetUp() override {
    op = add_token(p, "ops", "operator");
    viewer = add_token(p, "dash", "viewer");
    // A step waiting for the test's go, then leaving its mark (its start and end in its scratch folder).
    p.commit(
        "scripts/gated.sh",
        "date +%s%N > \"$CP_SCRATCH_DIR/start\"\n"
        "i=0; while [ ! -e \"$CP_SCRATCH_DIR/go\" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done\n"
        "mkdir -p \"$1\" && echo \"$1\" > \"$1/done.txt\"\n"
        "date +%s%N > \"$CP_SCRATCH_DIR/end\"\n");
    // A step that needs what others made (on the chain branch it starts from), then makes its own.
    p.commit(
        "scripts/needs.sh",
        "date +%s%N > \"$CP_SCRATCH_DIR/start\"\n"
        "out=$1; shift\n"
        "for d in \"$@\"; do test -f \"$d/done.txt\" || { echo \"missing $d/done.txt\" >&2; exit 1; }; done\n"
        "mkdir -p \"$out\" && echo \"$out\" > \"$out/done.txt\"\n"
        "date +%s%N > \"$CP_SCRATCH_DIR/end\"\n");
    main_head = sh("git rev-parse main", p.repo).out;
    serve_args = {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string(), "--concurrency",
                  "2"};
    serve = std::make_unique<ServeProcess>(p, serve_args);
    ASSERT_NE(serve->port(), 0) << serve->output();
  }

  // A task contract for the tool runner: `commands` in the sample repo, `allowed` its only allowed path.
  json contract(const std::string& task, const std::string& allowed, std::vector<std::string> commands,
                const std::string& pack = "low") const {
    json c = p.contract(std::move(commands));
    c["task_id"] = task;
    c["allowed_paths"] = json::array({allowed});
    c["required_outputs"] = json::array();
    c["acceptance_tests"] =
        json::array({{{"name", "ok"}, {"cmd", "true"}, {"must_pass", true}, {"timeout_sec", 60}}});
    c["runtime_options"]["pack"] = pack;
    c["timeout_retry"] = {{"timeout_sec", 300}, {"max_retries", 0}, {"backoff_sec", 0}};
    return c;
  }
  json step(const std::string& id, const json& contract, json extra = json::object()) const {
    json s{{"step_id", id}, {"kind", "task"}, {"role", "WORKER"}, {"contract", contract}};
    for (const auto& [k, v] : extra.items()) s[k] = v;
    return s;
  }
  static json chain_of(const std::string& id, json steps) {
    return {{"schema_version", 1},
            {"chain_id", id},
            {"lifecycle", {{"require_pm_loop", false}}},
            {"steps", std::move(steps)}};
  }

  HttpResponse post(const std::string& target, const json& body, const std::string& token) const {
    return http(serve->port(), "POST", target, bearer(token), body.dump());
  }
  // Queues `chain` through the API; returns its run id.
  std::string submit(const json& chain) const {
    auto r = post("/api/chains", {{"chain", chain}, {"repo", p.repo.string()}, {"origin", "test"}}, op);
    EXPECT_EQ(r.status, 202) << r.body;
    json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(r.headers.count("location"), 1u);
    return j.is_object() ? j.value("run_id", "") : "";
  }
  json view(const std::string& id) const {
    auto r = http(serve->port(), "GET", "/api/chains/" + id, bearer(viewer));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  static const json& step_of(const json& v, const std::string& id) {
    for (const auto& s : v["steps"])
      if (s["step_id"] == id) return s;
    static const json none = json::object();
    return none;
  }
  json wait_sealed(const std::string& id, seconds limit = seconds(180)) const {
    json v;
    bool sealed = wait_until([&] { return (v = view(id)).value("status", "") == "sealed"; }, limit);
    EXPECT_TRUE(sealed) << v.dump(2) << serve->output();
    return v;
  }
  // A chain of a step that waits for the test's go ("slow") and one after it ("later").
  std::string submit_slow_then_later(const std::string& chain_id) const {
    return submit(chain_of(chain_id, {step("slow", contract("slow", "s/", {"sh scripts/gated.sh s"})),
                                      step("later", contract("later", "l/", {"sh scripts/needs.sh l"}))}));
  }
  // The run of chain `id`'s "slow" step once it has started (its start mark written), "" if it never did;
  // `v` is the chain's last view.
  std::string wait_slow_started(const std::string& id, json& v) const {
    std::string slow;
    bool started = wait_until(
        [&] {
          slow = run_of(v = view(id), "slow");
          return !slow.empty() && mark(slow, "start") > 0;
        },
        seconds(120));
    return started ? slow : std::string();
  }
  fs::path runs() const { return p.dir / ".runtime-cache/cortexpilot/runs"; }
  fs::path scratch(const std::string& run_id) const { return runs() / run_id / "artifacts/scratch"; }
  // A step's mark (nanoseconds since the epoch); -1 while absent.
  long long mark(const std::string& run_id, const std::string& name) const {
    std::error_code ec;
    fs::path f = scratch(run_id) / name;
    if (!fs::exists(f, ec) || fs::file_size(f, ec) == 0) return -1;
    return std::stoll(read_file(f));
  }
  std::string run_of(const json& v, const std::string& step) const {
    const json& s = step_of(v, step);
    return s.contains("run_id") && s["run_id"].is_string() ? s["run_id"].get<std::string>() : "";
  }
  // The manifests of every run that names chain `id` as its chain, by step.
  std::map<std::string, std::vector<json>> step_runs(const std::string& id) const {
    std::map<std::string, std::vector<json>> out;
    for (const auto& e : fs::directory_iterator(runs())) {
      if (e.path().filename().string()[0] == '.') continue;
      json m = json::parse(read_file(e.path() / "manifest.json"), nullptr, false);
      if (m.is_object() && m.contains("chain") && m["chain"]["run_id"] == id)
        out[m["chain"]["step_id"].get<std::string>()].push_back(m);
    }
    return out;
  }
  json bundle_file(const std::string& id, const std::string& rel) const {
    return json::parse(read_file(runs() / id / rel), nullptr, false);
  }
  json queue_item(const std::string& item) const {
    auto r = http(serve->port(), "GET", "/api/queue/" + item, bearer(viewer));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  void expect_sealed_chain_valid(const std::string& id) const {
    json m = bundle_file(id, "manifest.json");
    expect_valid("run_manifest", m, "chain manifest");
    EXPECT_EQ(m["kind"], "chain");
    expect_valid("task_chain", bundle_file(id, "contract.json"), "chain contract.json");
    expect_valid("chain_report", bundle_file(id, "reports/chain_report.json"), "chain report");
    std::ifstream in(runs() / id / "events.jsonl");
    std::string line;
    while (std::getline(in, line)) expect_valid("event", json::parse(line), "chain event");
    Ran v = p.runs({"verify", id});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  }
  std::string git(const std::string& args) const {
    Ran r = sh("git " + args, p.repo);
    return r.exit_code == 0 ? r.out : "<" + std::to_string(r.exit_code) + ">";
  }
};

TEST_F(ServeChainQueue, AParallelGroupRunsAtOnceAndTheStepAfterItStartsWhenBothEnded) {
  json chain = chain_of("parallel",
                        {step("a", contract("a", "a/", {"sh scripts/gated.sh a"}), {{"parallel_group", "g"}}),
                         step("b", contract("b", "b/", {"sh scripts/gated.sh b"}), {{"parallel_group", "g"}}),
                         step("c", contract("c", "c/", {"sh scripts/needs.sh c a b"}))});
  const std::string id = submit(chain);
  ASSERT_FALSE(id.empty());

  // Both group steps start and wait: neither can end before the test lets them, so both run at once.
  json v;
  std::string ra, rb;
  ASSERT_TRUE(wait_until(
      [&] {
        v = view(id);
        ra = run_of(v, "a");
        rb = run_of(v, "b");
        return !ra.empty() && !rb.empty() && mark(ra, "start") > 0 && mark(rb, "start") > 0;
      },
      seconds(120)))
      << v.dump(2) << serve->output();
  EXPECT_EQ(v["state"], "running");
  EXPECT_EQ(v["queued"], true);
  EXPECT_EQ(v["origin"], "test");
  EXPECT_EQ(step_of(v, "a")["state"], "running");
  EXPECT_EQ(step_of(v, "b")["state"], "running");
  EXPECT_EQ(step_of(v, "a")["parallel_group"], "g");
  EXPECT_EQ(step_of(v, "c")["state"], "pending");
  EXPECT_EQ(step_of(v, "c")["depends_on"], json::array({"a", "b"}));
  EXPECT_TRUE(step_of(v, "c")["runs"].empty()) << "c has not started";
  // The list shows the queued chain first.
  auto list = json::parse(http(serve->port(), "GET", "/api/chains", bearer(viewer)).body);
  ASSERT_FALSE(list["chains"].empty());
  EXPECT_EQ(list["chains"][0]["run_id"], id);
  EXPECT_EQ(list["chains"][0]["queued"], true);
  EXPECT_EQ(list["chains"][0]["state"], "running");

  write_file(scratch(ra) / "go", "");
  write_file(scratch(rb) / "go", "");
  v = wait_sealed(id);
  EXPECT_EQ(v["verdict"], "success") << v.dump(2);
  const std::string rc = run_of(v, "c");
  ASSERT_FALSE(rc.empty()) << v.dump(2);
  // The marks: a and b overlapped; c started after both had ended.
  long long a0 = mark(ra, "start"), a1 = mark(ra, "end"), b0 = mark(rb, "start"), b1 = mark(rb, "end"),
            c0 = mark(rc, "start");
  ASSERT_GT(a1, 0);
  ASSERT_GT(b1, 0);
  ASSERT_GT(c0, 0);
  EXPECT_LT(a0, b1);
  EXPECT_LT(b0, a1);
  EXPECT_GT(c0, a1);
  EXPECT_GT(c0, b1);

  // c found a's and b's changes (it fails without them): the chain branch carried them, and holds all three.
  const std::string branch = "cp-chain/" + id;
  EXPECT_EQ(v["result"]["branch"], branch);
  for (const char* f : {"a", "b", "c"})
    EXPECT_EQ(git("show " + branch + ":" + f + "/done.txt"), std::string(f) + "\n");
  EXPECT_EQ(git("rev-parse main"), main_head) << "the user's branch did not move";
  expect_sealed_chain_valid(id);
  json report = bundle_file(id, "reports/chain_report.json");
  EXPECT_EQ(report["queue"]["origin"], "test");
  EXPECT_EQ(report["queue"]["submitted_by"], "ops");
  EXPECT_EQ(report["steps"].size(), 3u);
  // Each step is a run of its own, linked to the chain; the sealed view keeps the queue's fields.
  auto by_step = step_runs(id);
  for (const char* s : {"a", "b", "c"}) EXPECT_EQ(by_step[s].size(), 1u) << s;
  EXPECT_EQ(v["state"], "done");
  EXPECT_EQ(step_of(v, "c")["depends_on"], json::array({"a", "b"}));
  EXPECT_FALSE(step_of(v, "a")["commit"].get<std::string>().empty());
  // `cp-host chain show` prints the same view.
  Ran cli = host({"--root", p.dir.path().string(), "chain", "show", id, "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(json::parse(cli.out)["verdict"], "success");
}

TEST_F(ServeChainQueue, ContinueOnFailIsHonouredAndWithoutItAFailedStepEndsTheChain) {
  const std::string tolerant = submit(
      chain_of("tolerant", {step("bad", contract("bad", "x/", {"false"}), {{"continue_on_fail", true}}),
                            step("good", contract("good", "g/", {"sh scripts/needs.sh g"}))}));
  const std::string strict =
      submit(chain_of("strict", {step("bad", contract("bad", "y/", {"false"})),
                                 step("good", contract("good", "h/", {"sh scripts/needs.sh h"}))}));
  json t = wait_sealed(tolerant), s = wait_sealed(strict);

  EXPECT_EQ(t["verdict"], "success") << t.dump(2);
  EXPECT_NE(step_of(t, "bad")["verdict"], "success");
  EXPECT_EQ(step_of(t, "good")["verdict"], "success") << "the step after a failure allowed to fail ran";
  EXPECT_NE(t["reason"].get<std::string>().find("allowed to fail"), std::string::npos) << t["reason"];
  EXPECT_EQ(git("show cp-chain/" + tolerant + ":g/done.txt"), "g\n");

  EXPECT_NE(s["verdict"], "success") << s.dump(2);
  EXPECT_EQ(step_of(s, "good")["state"], "not_run");
  EXPECT_TRUE(step_runs(strict)["good"].empty()) << "nothing after the failed step started";
  json incident = bundle_file(strict, "reports/incident_pack.json");
  EXPECT_EQ(incident["failed_step"]["step_id"], "bad");
  json good_item = queue_item(step_of(s, "good")["item_id"]);
  EXPECT_EQ(good_item["state"], "cancelled");
  EXPECT_TRUE(good_item["attempts"].empty());
  expect_sealed_chain_valid(tolerant);
  expect_sealed_chain_valid(strict);
}

TEST_F(ServeChainQueue, AnApprovalStepPausesTheChainAcrossAKill9UntilApprovedThroughTheApi) {
  const std::string id = submit(
      chain_of("approval", {step("gate", contract("gate", "gate/", {"sh scripts/needs.sh gate"}, "high")),
                            step("next", contract("next", "next/", {"sh scripts/needs.sh next gate"}))}));
  json v;
  ASSERT_TRUE(
      wait_until([&] { return step_of(v = view(id), "gate")["state"] == "awaiting_approval"; }, seconds(120)))
      << v.dump(2) << serve->output();
  EXPECT_EQ(v["state"], "awaiting_approval");
  EXPECT_TRUE(step_of(v, "gate")["requires_approval"].get<bool>());
  EXPECT_EQ(step_of(v, "next")["state"], "pending");
  EXPECT_NE(step_of(v, "next").value("waiting_on", "").find("approval"), std::string::npos) << v.dump(2);
  const std::string gate_run = run_of(v, "gate");

  // serve dies hard while the chain waits, and another one takes over.
  serve->kill9();
  serve->start(serve_args);
  ASSERT_NE(serve->port(), 0) << serve->output();
  v = view(id);
  EXPECT_EQ(step_of(v, "gate")["state"], "awaiting_approval") << v.dump(2);
  EXPECT_TRUE(step_of(v, "next")["runs"].empty());

  auto ok = post("/api/runs/" + gate_run + "/approve", {{"reason", "looks right"}}, op);
  ASSERT_EQ(ok.status, 200) << ok.body;
  v = wait_sealed(id);
  EXPECT_EQ(v["verdict"], "success") << v.dump(2);
  // next started from gate's approved change (it fails without it), and each step ran exactly once.
  auto by_step = step_runs(id);
  EXPECT_EQ(by_step["gate"].size(), 1u);
  EXPECT_EQ(by_step["next"].size(), 1u);
  for (const char* s : {"gate", "next"}) {
    json item = queue_item(step_of(v, s)["item_id"]);
    EXPECT_EQ(item["attempts"].size(), 1u) << item.dump(2);
  }
  EXPECT_EQ(git("show cp-chain/" + id + ":gate/done.txt"), "gate\n");
  EXPECT_EQ(git("show cp-chain/" + id + ":next/done.txt"), "next\n");
  json gm = json::parse(read_file(runs() / gate_run / "manifest.json"));
  EXPECT_EQ(gm["approval"]["decision"]["by"], "ops") << "a person approved it, through the API";
  expect_sealed_chain_valid(id);
}

TEST_F(ServeChainQueue, ARejectedOrOverdueApprovalEndsTheChainWithAnIncidentNamingTheStep) {
  const std::string id = submit(
      chain_of("rejected", {step("gate", contract("gate", "gate/", {"sh scripts/needs.sh gate"}, "high")),
                            step("next", contract("next", "next/", {"sh scripts/needs.sh next"}))}));
  json v;
  ASSERT_TRUE(
      wait_until([&] { return step_of(v = view(id), "gate")["state"] == "awaiting_approval"; }, seconds(120)))
      << v.dump(2);
  auto no = post("/api/runs/" + run_of(v, "gate") + "/reject", {{"reason", "wrong file"}}, op);
  ASSERT_EQ(no.status, 200) << no.body;
  v = wait_sealed(id);
  EXPECT_EQ(v["verdict"], "denied") << v.dump(2);
  EXPECT_EQ(step_of(v, "next")["state"], "not_run");
  json incident = bundle_file(id, "reports/incident_pack.json");
  EXPECT_EQ(incident["failed_step"]["step_id"], "gate");
  EXPECT_NE(incident["reason"].get<std::string>().find("gate"), std::string::npos);
  EXPECT_NE(incident["failed_step"]["reason"].get<std::string>().find("rejected"), std::string::npos)
      << incident.dump(2);
  EXPECT_TRUE(step_runs(id)["next"].empty());
  EXPECT_EQ(git("rev-parse --verify --quiet cp-chain/" + id), "<1>") << "nothing was carried";
  expect_sealed_chain_valid(id);

  // Nobody decides before the pack's deadline: the rule denies it, and the chain ends the same way.
  json timed = json::parse(read_file(p.dir / "packs/high.json"));
  timed["pack_id"] = "timed";
  timed["approval"] = {{"deadline_sec", 1}};
  write_file(p.dir / "packs/timed.json", timed.dump(2));
  const std::string late = submit(
      chain_of("overdue", {step("gate", contract("gate", "gate/", {"sh scripts/needs.sh gate"}, "timed")),
                           step("next", contract("next", "next/", {"sh scripts/needs.sh next"}))}));
  json lv = wait_sealed(late);
  EXPECT_EQ(lv["verdict"], "denied") << lv.dump(2);
  EXPECT_EQ(step_of(lv, "next")["state"], "not_run");
  json li = bundle_file(late, "reports/incident_pack.json");
  EXPECT_EQ(li["failed_step"]["step_id"], "gate");
  EXPECT_NE(li["failed_step"]["reason"].get<std::string>().find("deadline"), std::string::npos) << li.dump(2);
}

// continue_on_fail lets a step's failure pass, never a person's refusal: a rejected approval still ends the
// chain, and what comes after it never runs.
TEST_F(ServeChainQueue, ContinueOnFailDoesNotLetARejectedApprovalPass) {
  const std::string id = submit(
      chain_of("tolerant-gate", {step("gate", contract("gate", "gate/", {"sh scripts/needs.sh gate"}, "high"),
                                      {{"continue_on_fail", true}}),
                                 step("next", contract("next", "next/", {"sh scripts/needs.sh next"}))}));
  json v;
  ASSERT_TRUE(
      wait_until([&] { return step_of(v = view(id), "gate")["state"] == "awaiting_approval"; }, seconds(120)))
      << v.dump(2);
  ASSERT_EQ(post("/api/runs/" + run_of(v, "gate") + "/reject", {{"reason", "no"}}, op).status, 200);
  v = wait_sealed(id);
  EXPECT_NE(v["verdict"], "success") << v.dump(2);
  EXPECT_EQ(step_of(v, "next")["state"], "not_run") << v.dump(2);
  EXPECT_TRUE(step_runs(id)["next"].empty()) << "the step after the refusal never ran";
  EXPECT_EQ(bundle_file(id, "reports/incident_pack.json")["failed_step"]["step_id"], "gate");
}

// A person who cancels one step's queue item (not the chain) ends the chain cancelled, whatever words the
// cancel's reason uses: only the host's own cancels are the chain's.
TEST_F(ServeChainQueue, APersonCancellingAStepItemEndsTheChainWhateverTheReasonSays) {
  const std::string id = submit_slow_then_later("step-cancel");
  json v;
  const std::string slow = wait_slow_started(id, v);
  ASSERT_FALSE(slow.empty()) << v.dump(2);
  const std::string later_item = step_of(v, "later")["item_id"];
  auto r = post("/api/queue/" + later_item + "/cancel", {{"reason", "dependency bump no longer needed"}}, op);
  ASSERT_EQ(r.status, 202) << r.body;
  write_file(scratch(slow) / "go", "");
  v = wait_sealed(id);
  EXPECT_EQ(v["verdict"], "cancelled") << v.dump(2);
  EXPECT_EQ(step_of(v, "slow")["verdict"], "success") << "the running step finished";
  json report = bundle_file(id, "reports/chain_report.json");
  EXPECT_NE(report["verdict"], "success") << report.dump(2);
  EXPECT_TRUE(step_runs(id)["later"].empty());
}

TEST_F(ServeChainQueue, CancellingARunningChainStopsItsStepAndStartsNothingLater) {
  const std::string id = submit_slow_then_later("cancel");
  json v;
  const std::string slow = wait_slow_started(id, v);
  ASSERT_FALSE(slow.empty()) << v.dump(2);
  EXPECT_EQ(http(serve->port(), "POST", "/api/chains/" + id + "/cancel", bearer(viewer), "{}").status, 403);
  auto r = post("/api/chains/" + id + "/cancel", {{"reason", "not needed"}}, op);
  ASSERT_EQ(r.status, 200) << r.body;
  json out = json::parse(r.body);
  EXPECT_EQ(out["stopping"], 1);
  EXPECT_EQ(out["cancelled"], 1);
  v = wait_sealed(id);
  EXPECT_EQ(v["verdict"], "cancelled") << v.dump(2);
  EXPECT_EQ(v["state"], "cancelled");
  EXPECT_EQ(json::parse(read_file(runs() / slow / "manifest.json"))["verdict"], "cancelled");
  EXPECT_TRUE(processes_of_runs({slow}).empty()) << "no process of the stopped step is left";
  EXPECT_LT(mark(slow, "end"), 0) << "the step was stopped, it did not finish";
  json later = queue_item(step_of(v, "later")["item_id"]);
  EXPECT_EQ(later["state"], "cancelled");
  EXPECT_TRUE(later["attempts"].empty()) << "nothing after it started";
  EXPECT_TRUE(step_runs(id)["later"].empty());
  EXPECT_EQ(post("/api/chains/" + id + "/cancel", json::object(), op).status, 409);
  EXPECT_EQ(post("/api/chains/no-such-chain/cancel", json::object(), op).status, 404);
  expect_sealed_chain_valid(id);
}

TEST_F(ServeChainQueue, AnInvalidChainQueuesNothing) {
  json bad = contract("two", "t/", {"true"});
  bad.erase("task_id");
  auto r = post(
      "/api/chains",
      {{"chain", chain_of("invalid", {step("one", contract("one", "o/", {"true"})), step("two", bad)})}}, op);
  EXPECT_EQ(r.status, 422) << r.body;
  json e = json::parse(r.body);
  EXPECT_EQ(e["error"]["code"], "invalid_chain");
  bool points = false;
  for (const auto& d : e["error"]["details"])
    points = points || d["pointer"].get<std::string>().rfind("/chain/steps/1/contract", 0) == 0;
  EXPECT_TRUE(points) << e.dump(2);

  // A cycle, a step that claims its own approval, a contract file outside the project, a viewer: refused.
  json cyc = chain_of("cyc", {step("a", contract("a", "a/", {"true"}), {{"depends_on", {"b"}}}),
                              step("b", contract("b", "b/", {"true"}))});
  auto rc = post("/api/chains", {{"chain", cyc}}, op);
  EXPECT_EQ(rc.status, 422) << rc.body;
  EXPECT_NE(rc.body.find("/chain/steps/0/depends_on/0"), std::string::npos) << rc.body;
  json forged = chain_of("forged", {step("a", contract("a", "a/", {"true"}), {{"approved", true}})});
  EXPECT_EQ(post("/api/chains", {{"chain", forged}}, op).status, 422);
  write_file(p.dir / "outside.json", contract("o", "o/", {"true"}).dump());
  json escape = chain_of("escape", {step("a", "../" + p.dir.path().filename().string() + "/outside.json")});
  EXPECT_EQ(post("/api/chains", {{"chain", escape}}, op).status, 422);
  EXPECT_EQ(
      post("/api/chains", {{"chain", chain_of("v", {step("a", contract("a", "a/", {"true"}))})}}, viewer)
          .status,
      403);
  EXPECT_EQ(post("/api/chains",
                 {{"chain", chain_of("v", {step("a", contract("a", "a/", {"true"}))})}, {"extra", 1}}, op)
                .status,
            422);

  auto q = json::parse(http(serve->port(), "GET", "/api/queue", bearer(viewer)).body);
  EXPECT_TRUE(q["items"].empty()) << q.dump(2);
  std::error_code ec;
  EXPECT_FALSE(fs::exists(runs(), ec) && !fs::is_empty(runs(), ec) &&
               std::any_of(fs::directory_iterator(runs()), fs::directory_iterator(),
                           [](const auto& d) { return d.path().filename().string()[0] != '.'; }))
      << "no run was started";
  fs::path chains = p.dir / ".runtime-cache/cortexpilot/queue/chains";
  size_t kept = 0;
  for (const auto& d : fs::directory_iterator(chains, ec))
    if (d.path().filename().string()[0] != '.') ++kept;
  EXPECT_EQ(kept, 0u) << "no chain record was kept";
  auto list = json::parse(http(serve->port(), "GET", "/api/chains", bearer(viewer)).body);
  EXPECT_EQ(list["count"], 0);
}

TEST_F(ServeChainQueue, AStepCannotEscapeItsAllowedPathsThroughTheChainBranch) {
  // b may change b/ only; it also rewrites a's file and tries to move every branch (the chain's included)
  // from inside its run.
  p.commit(
      "scripts/escape.sh",
      "mkdir -p b && echo b > b/done.txt\n"
      "echo evil > a/done.txt\n"
      "for r in $(git for-each-ref --format='%(refname)' refs/heads/); do git update-ref \"$r\" HEAD; done\n"
      "true\n");
  main_head = git("rev-parse main");
  const std::string id =
      submit(chain_of("escape", {step("a", contract("a", "a/", {"sh scripts/needs.sh a"})),
                                 step("b", contract("b", "b/", {"sh scripts/escape.sh"}))}));
  json v = wait_sealed(id);
  EXPECT_EQ(v["verdict"], "denied") << v.dump(2);
  EXPECT_EQ(step_of(v, "b")["verdict"], "denied");
  const std::string a_commit = step_of(v, "a")["commit"];
  ASSERT_FALSE(a_commit.empty());
  const std::string branch = "cp-chain/" + id;
  EXPECT_EQ(git("rev-parse " + branch), a_commit + "\n")
      << "the chain branch holds a's change and nothing of b's";
  EXPECT_EQ(git("show " + branch + ":a/done.txt"), "a\n");
  EXPECT_EQ(git("cat-file -e " + branch + ":b/done.txt"), "<128>");
  EXPECT_EQ(git("rev-parse main"), main_head) << "no branch moved from inside the run";
  EXPECT_EQ(bundle_file(id, "reports/incident_pack.json")["failed_step"]["step_id"], "b");
}

TEST_F(ServeChainQueue, AChainCannotApproveItsOwnStep) {
  // thief runs beside the approval step and, once told its run id, tries `cp-host approve` on it.
  p.commit(
      "scripts/thief.sh",
      "date +%s%N > \"$CP_SCRATCH_DIR/start\"\n"
      "i=0; while [ ! -e \"$CP_SCRATCH_DIR/target\" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done\n"
      ". \"$CP_SCRATCH_DIR/target\"\n"
      // A sanitizer build's leak check stops the world with ptrace, which the run's seccomp filter refuses.
      "export ASAN_OPTIONS=detect_leaks=0\n"
      "\"$HOST\" --root \"$ROOT\" approve \"$RUN\" > \"$CP_SCRATCH_DIR/approve.out\" 2>&1\n"
      "echo $? > \"$CP_SCRATCH_DIR/approve.rc\"\n"
      "mkdir -p t && echo t > t/done.txt\n");
  const std::string id = submit(chain_of(
      "self", {step("gate", contract("gate", "gate/", {"sh scripts/needs.sh gate"}, "high"),
                    {{"parallel_group", "g"}}),
               step("thief", contract("thief", "t/", {"sh scripts/thief.sh"}), {{"parallel_group", "g"}})}));
  json v;
  std::string thief;
  ASSERT_TRUE(wait_until(
      [&] {
        v = view(id);
        thief = run_of(v, "thief");
        return step_of(v, "gate")["state"] == "awaiting_approval" && !thief.empty() &&
               mark(thief, "start") > 0;
      },
      seconds(120)))
      << v.dump(2);
  const std::string gate_run = run_of(v, "gate");
  write_file(scratch(thief) / "target", "HOST='" + std::string(CP_HOST_BIN) + "'\nROOT='" +
                                            p.dir.path().string() + "'\nRUN='" + gate_run + "'\n");
  ASSERT_TRUE(wait_until([&] { return fs::exists(scratch(thief) / "approve.rc"); }, seconds(120)));
  // Refused as a decision from inside a run (exit 11), before anything was read.
  EXPECT_EQ(read_file(scratch(thief) / "approve.rc"), "11\n") << read_file(scratch(thief) / "approve.out");
  EXPECT_NE(read_file(scratch(thief) / "approve.out").find("inside a run"), std::string::npos);
  json gm = json::parse(read_file(runs() / gate_run / "manifest.json"));
  EXPECT_EQ(gm["status"], "awaiting_approval") << "the step's own chain did not approve it";
  EXPECT_FALSE(gm.contains("verdict") && gm["verdict"] == "success");
  // A person does, and the chain ends.
  ASSERT_EQ(post("/api/runs/" + gate_run + "/approve", json::object(), op).status, 200);
  v = wait_sealed(id);
  EXPECT_EQ(v["verdict"], "success") << v.dump(2);
  gm = json::parse(read_file(runs() / gate_run / "manifest.json"));
  EXPECT_EQ(gm["approval"]["decision"]["by"], "ops");
}

TEST(ChainQueueCli, SubmitListShowAndCancelWithoutAServerThenServeSealsItCancelled) {
  RunProject p;
  const std::string root = p.dir.path().string();
  json c = p.contract({"true"});
  c["task_id"] = "only";
  c["allowed_paths"] = json::array({"o/"});
  c["runtime_options"]["pack"] = "low";
  write_file(p.dir / "chains/only.json", c.dump(2));  // a contract file, relative to the chain file
  json chain{{"schema_version", 1},
             {"chain_id", "cli"},
             {"lifecycle", {{"require_pm_loop", false}}},
             {"steps",
              {{{"step_id", "one"}, {"kind", "task"}, {"role", "WORKER"}, {"contract", "only.json"}},
               {{"step_id", "two"}, {"kind", "task"}, {"role", "WORKER"}, {"contract", "only.json"}}}}};
  write_file(p.dir / "chains/cli.chain.json", chain.dump(2));
  Ran sub = host({"--root", root, "chain", "submit", (p.dir / "chains/cli.chain.json").string(), "--repo",
                  p.repo.string(), "--origin", "intake:t1"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::string id = sub.out.substr(0, sub.out.find('\n'));
  Ran list = host({"--root", root, "chain", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json rows = json::parse(list.out);
  ASSERT_EQ(rows["count"], 1);
  EXPECT_EQ(rows["chains"][0]["run_id"], id);
  EXPECT_EQ(rows["chains"][0]["state"], "queued");
  EXPECT_EQ(rows["chains"][0]["origin"], "intake:t1");
  Ran show = host({"--root", root, "chain", "show", id, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  json v = json::parse(show.out);
  EXPECT_EQ(v["steps"][1]["depends_on"], json::array({"one"}));
  EXPECT_EQ(v["steps"][0]["state"], "queued");
  // The overlap rule made no difference here (two's implicit wait already orders them).
  Ran cancel = host({"--root", root, "chain", "cancel", id, "--reason", "changed my mind", "--json"});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(json::parse(cancel.out)["cancelled"], 2);
  EXPECT_EQ(host({"--root", root, "chain", "cancel", "nope-20260101T000000Z-000000"}).exit_code, 1);

  // A serve started afterwards seals the chain cancelled; no step ever ran.
  ServeProcess serve(p, {"--open-reads"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  json sealed;
  ASSERT_TRUE(wait_until(
      [&] {
        sealed = json::parse(http(serve.port(), "GET", "/api/chains/" + id).body, nullptr, false);
        return sealed.is_object() && sealed.value("status", "") == "sealed";
      },
      seconds(60)))
      << sealed.dump(2) << serve.output();
  EXPECT_EQ(sealed["verdict"], "cancelled");
  EXPECT_EQ(sealed["state"], "cancelled");
  EXPECT_NE(sealed["reason"].get<std::string>().find("changed my mind"), std::string::npos)
      << sealed["reason"];
  for (const auto& s : sealed["steps"]) EXPECT_EQ(s["state"], "not_run") << s.dump(2);
  EXPECT_EQ(host({"--root", root, "chain", "cancel", id}).exit_code, 4) << "it has ended";

  // An invalid chain file: the diagnostics name the file and pointer; nothing is queued.
  chain["steps"][1]["depends_on"] = {"nobody"};
  write_file(p.dir / "chains/bad.chain.json", chain.dump(2));
  Ran bad = host({"--root", root, "chain", "submit", (p.dir / "chains/bad.chain.json").string(), "--repo",
                  p.repo.string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("/steps/1/depends_on/0"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("bad.chain.json:"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace cp::test
