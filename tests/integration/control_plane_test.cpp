// The control plane on top of single runs, through the cp-host binary: approvals (approvers, god-mode,
// reject, deadline default-deny), evidence promote/reject into a real git repository, workflow cases,
// replay + compare, and intake preview. Every file these write is checked against its schema.
#include "integration/run_project.hpp"
#include "store/event_log.hpp"

#include <chrono>

using namespace cp::test;

namespace {

// A project whose `high` pack requires approval with the given approval settings.
struct ApprovalProject : RunProject {
  explicit ApprovalProject(json approval = json::object()) {
    json pack = json::parse(read_file(dir / "packs/high.json"));
    if (!approval.empty()) pack["approval"] = approval;
    write_file(dir / "packs/high.json", pack.dump(2));
  }
  json contract_high(const std::string& workflow = "") const {
    json c = contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
    c["runtime_options"]["pack"] = "high";
    if (!workflow.empty()) c["workflow_id"] = workflow;
    return c;
  }
  Ran cli(std::vector<std::string> args) const {
    std::vector<std::string> a{"--root", dir.path().string()};
    a.insert(a.end(), args.begin(), args.end());
    return host(a, dir.path());
  }
  json cli_json(std::vector<std::string> args, int expect_exit) const {
    args.push_back("--json");
    Ran r = cli(args);
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  }
  json manifest(const std::string& id) const {
    return json::parse(read_file(dir / ".runtime-cache/cortexpilot/runs" / id / "manifest.json"));
  }
  json report(const std::string& id, const std::string& name) const {
    return json::parse(
        read_file(dir / ".runtime-cache/cortexpilot/runs" / id / "reports" / (name + ".json")));
  }
  std::vector<std::string> event_types(const std::string& id) const {
    std::vector<std::string> t;
    std::ifstream in(dir / ".runtime-cache/cortexpilot/runs" / id / "events.jsonl");
    std::string line;
    while (std::getline(in, line)) t.push_back(json::parse(line)["type"]);
    return t;
  }
  std::string git(const std::string& args) const {
    Ran r = sh("git " + args, repo);
    EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    return r.out;
  }
  // An awaiting run, checked as such.
  std::string awaiting_run(const std::string& workflow = "") const {
    auto r = run(contract_high(workflow));
    EXPECT_EQ(r.ran.exit_code, 9) << r.ran.out << r.ran.err;
    EXPECT_EQ(r.manifest["status"], "awaiting_approval");
    expect_valid("approval_pack", r.read("reports/approval_pack.json"), "approval_pack");
    return r.manifest.value("run_id", "");
  }
  // The run's events chain verifies and its manifest counts them.
  void expect_sound(const std::string& id) const {
    Ran v = runs({"verify", id});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    json m = manifest(id);
    expect_valid("run_manifest", m, "manifest of " + id);
    EXPECT_EQ(m["events"]["count"], event_types(id).size());
    std::ifstream in(dir / ".runtime-cache/cortexpilot/runs" / id / "events.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      json e = json::parse(line);
      expect_valid("event", e, "event " + e["type"].get<std::string>() + " of " + id);
    }
  }
};

size_t count_of(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<size_t>(std::count(v.begin(), v.end(), x));
}

}  // namespace

TEST(Approvals, ApproveThenPromoteLeavesACommitInTheRepository) {
  ApprovalProject p;
  std::string id = p.awaiting_run();
  std::string main_before = p.git("rev-parse main");

  json pending = p.cli_json({"approvals", "list"}, 0);
  ASSERT_EQ(pending["count"], 1);
  EXPECT_EQ(pending["approvals"][0]["run_id"], id);
  EXPECT_EQ(pending["approvals"][0]["approvers_required"], 1);

  // Evidence cannot move before the decision.
  Ran early = p.cli({"evidence", "promote", id, "--branch", "cp/fix"});
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_NE(early.err.find("approve it first"), std::string::npos) << early.err;

  json a = p.cli_json({"approve", id, "--reason", "diff reviewed"}, 0);
  EXPECT_EQ(a["outcome"], "approved");
  EXPECT_EQ(a["verdict"], "success");
  json m = p.manifest(id);
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["approval"]["state"], "approved");
  const json& d = m["approval"]["decision"];
  EXPECT_EQ(d["how"], "human");
  EXPECT_EQ(d["by_kind"], "os_user");
  EXPECT_FALSE(d["by"].get<std::string>().empty());
  EXPECT_EQ(d["reason"], "diff reviewed");
  EXPECT_FALSE(d["at"].get<std::string>().empty());
  json proof = p.report(id, "proof_pack");
  expect_valid("proof_pack", proof, "proof_pack");
  EXPECT_EQ(proof["approval"]["decision"], "approved");
  EXPECT_EQ(p.cli_json({"approvals", "list"}, 0)["count"], 0);

  json pr = p.cli_json({"evidence", "promote", id, "--branch", "cp/fix", "--reason", "ship"}, 0);
  EXPECT_EQ(pr["outcome"], "promoted");
  std::string commit = pr["evidence"]["commit"];
  // The commit is on the branch, made from the run's baseline, with exactly the run's change.
  EXPECT_EQ(p.git("rev-parse cp/fix"), commit + "\n");
  EXPECT_EQ(p.git("rev-parse cp/fix~1"), p.manifest(id)["baseline_commit"].get<std::string>() + "\n");
  EXPECT_NE(p.git("show cp/fix:src/greeting.sh").find("Hello, world"), std::string::npos);
  EXPECT_NE(p.git("log -1 --format=%B cp/fix").find("Run-Id: " + id), std::string::npos);
  EXPECT_EQ(p.git("diff --name-only cp/fix~1 cp/fix"), "src/greeting.sh\n");
  // The user's checkout, index and branch are untouched.
  EXPECT_EQ(p.git("rev-parse main"), main_before);
  EXPECT_EQ(p.git("status --porcelain"), "");
  EXPECT_NE(read_file(p.repo / "src/greeting.sh").find("Helo,"), std::string::npos);

  m = p.manifest(id);
  EXPECT_EQ(m["evidence"]["decision"], "promoted");
  EXPECT_EQ(m["evidence"]["branch"], "cp/fix");
  EXPECT_EQ(m["evidence"]["commit"], commit);
  auto types = p.event_types(id);
  EXPECT_EQ(count_of(types, "RUN_AWAITING_APPROVAL"), 1u);
  EXPECT_EQ(count_of(types, "APPROVAL_RECORDED"), 1u);
  EXPECT_EQ(count_of(types, "APPROVAL_DECIDED"), 1u);
  EXPECT_EQ(count_of(types, "RUN_SEALED"), 1u);
  EXPECT_EQ(types.back(), "EVIDENCE_PROMOTED");
  p.expect_sound(id);

  // `cp-host validate` knows every file of the bundle by itself, and the workflow case.
  Ran v = p.cli({"validate", (p.dir / ".runtime-cache/cortexpilot/runs" / id).string()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(v.out.find("cannot tell"), std::string::npos) << v.out;
  json broken = p.report(id, "approval_pack");
  broken.erase("run_id");
  write_file(p.dir / "broken_pack.json", broken.dump(2));
  Ran vb = p.cli({"validate", (p.dir / "broken_pack.json").string()});
  EXPECT_EQ(vb.exit_code, 1);
  EXPECT_NE((vb.out + vb.err).find("run_id"), std::string::npos) << vb.out << vb.err;

  // Decided once: a second promotion is refused and changes nothing.
  Ran again = p.cli({"evidence", "promote", id, "--branch", "cp/other"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already promoted"), std::string::npos) << again.err;
  EXPECT_NE(sh("git rev-parse --verify -q cp/other", p.repo).exit_code, 0);
}

TEST(Approvals, TwoApproversAreNeededUnlessAnAdminUsesGodMode) {
  ApprovalProject p(json{{"approvers", 2}});
  std::string id = p.awaiting_run();
  json first = p.cli_json({"approve", id}, 0);
  EXPECT_EQ(first["outcome"], "recorded");
  EXPECT_EQ(first["status"], "awaiting_approval");
  // The same person twice does not make two approvers.
  json dup = p.cli_json({"approve", id}, 1);
  EXPECT_EQ(dup["outcome"], "duplicate");
  EXPECT_EQ(p.manifest(id)["approval"]["approvals"].size(), 1u);
  // God-mode needs a reason.
  json no_reason = p.cli_json({"approve", id, "--god-mode"}, 2);
  EXPECT_EQ(no_reason["outcome"], "invalid");
  EXPECT_EQ(p.manifest(id)["status"], "awaiting_approval");
  json god = p.cli_json({"approve", id, "--god-mode", "--reason", "release blocker"}, 0);
  EXPECT_EQ(god["outcome"], "approved");
  json m = p.manifest(id);
  EXPECT_EQ(m["verdict"], "success");
  EXPECT_EQ(m["approval"]["decision"]["how"], "god_mode");
  EXPECT_EQ(m["approval"]["decision"]["reason"], "release blocker");
  EXPECT_EQ(m["approval"]["approvals"].size(), 2u);
  // Once decided, nothing more can be decided.
  json late = p.cli_json({"reject", id}, 1);
  EXPECT_EQ(late["outcome"], "not_awaiting");
  EXPECT_EQ(p.manifest(id)["verdict"], "success");
  p.expect_sound(id);
}

TEST(Approvals, RejectDeniesTheRunAndDiscardsItsWorktree) {
  ApprovalProject p;
  std::string id = p.awaiting_run();
  fs::path wt = p.manifest(id)["worktree"].get<std::string>();
  ASSERT_TRUE(fs::exists(wt));  // kept while the decision is pending
  json r = p.cli_json({"reject", id, "--reason", "wrong approach"}, 0);
  EXPECT_EQ(r["outcome"], "rejected");
  json m = p.manifest(id);
  EXPECT_EQ(m["verdict"], "denied");
  EXPECT_EQ(m["approval"]["state"], "rejected");
  EXPECT_NE(m["reason"].get<std::string>().find("wrong approach"), std::string::npos);
  EXPECT_FALSE(fs::exists(wt));
  EXPECT_EQ(m["worktree_kept"], false);
  json incident = p.report(id, "incident_pack");
  expect_valid("incident_pack", incident, "incident_pack");
  EXPECT_EQ(incident["verdict"], "denied");
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs" / id / "reports/proof_pack.json"));
  // A denied change cannot be promoted.
  Ran pr = p.cli({"evidence", "promote", id, "--branch", "cp/x"});
  EXPECT_EQ(pr.exit_code, 1);
  EXPECT_NE(pr.err.find("verdict denied"), std::string::npos) << pr.err;
  p.expect_sound(id);
}

TEST(Approvals, DeadlinePassedMeansDenied) {
  ApprovalProject p(json{{"deadline_sec", 1}});
  std::string id = p.awaiting_run();
  EXPECT_FALSE(p.manifest(id)["approval"]["deadline"].get<std::string>().empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  // Too late: the approval is not taken; the rule denies the run.
  json late = p.cli_json({"approve", id}, 1);
  EXPECT_EQ(late["outcome"], "expired");
  json m = p.manifest(id);
  EXPECT_EQ(m["verdict"], "denied");
  EXPECT_EQ(m["approval"]["state"], "expired");
  EXPECT_EQ(m["approval"]["decision"]["how"], "rule");
  EXPECT_EQ(m["approval"]["decision"]["by"], "cp-host");
  EXPECT_EQ(m["approval"]["approvals"].size(), 0u);
  EXPECT_NE(m["reason"].get<std::string>().find("default-deny"), std::string::npos);
  expect_valid("incident_pack", p.report(id, "incident_pack"), "incident_pack");

  // Listing applies the rule too, without anyone trying to decide.
  std::string id2 = p.awaiting_run();
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(p.cli_json({"approvals", "list"}, 0)["count"], 0);
  EXPECT_EQ(p.manifest(id2)["verdict"], "denied");
  p.expect_sound(id);
  p.expect_sound(id2);
}

TEST(Approvals, ADecisionCutShortAfterItsSignedSealIsFinished) {
  ApprovalProject p;
  std::string id = p.awaiting_run();
  fs::path bundle = p.dir / ".runtime-cache/cortexpilot/runs" / id;
  // The log and manifest as they were before the decision; then the decision, in full.
  std::string events_before = read_file(bundle / "events.jsonl");
  std::string manifest_before = read_file(bundle / "manifest.json");
  json r0 = p.cli_json({"approve", id}, 0);
  ASSERT_EQ(r0["outcome"], "approved");
  // As if cp-host died right after writing seal.json (the commit point): its events and manifest lost.
  write_file(bundle / "events.jsonl", events_before);
  write_file(bundle / "manifest.json", manifest_before);
  Ran v = p.runs({"verify", id});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("a crash cut it short"), std::string::npos) << v.out;
  // The next decision finishes the signed seal instead of deciding again.
  json r = p.cli_json({"reject", id}, 1);
  EXPECT_EQ(r["outcome"], "not_awaiting");
  json m = p.manifest(id);
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["verdict"], "success");
  auto types = p.event_types(id);
  EXPECT_EQ(types.back(), "RUN_SEALED");
  EXPECT_EQ(count_of(types, "APPROVAL_DECIDED"), 1u);
  p.expect_sound(id);
}

TEST(Approvals, DecisionEventsAppendedWithoutTheHostKeyAreRefused) {
  ApprovalProject p;
  std::string id = p.awaiting_run();
  fs::path bundle = p.dir / ".runtime-cache/cortexpilot/runs" / id;
  {
    // Someone who can write the bundle appends a decision and a seal: the chain holds, nothing signs them.
    cp::store::EventLog log(bundle / "events.jsonl", id);
    json who{{"by", "ops"}, {"by_kind", "os_user"}, {"how", "human"}, {"at", "2026-11-25T10:00:00Z"}};
    json decided = who;
    decided["decision"] = "approved";
    log.append("APPROVAL_DECIDED", decided);
    log.append("RUN_SEALED", {{"status", "sealed"}, {"verdict", "success"}, {"reason", "approved by ops"}});
  }
  json r = p.cli_json({"reject", id}, 1);
  EXPECT_EQ(r["outcome"], "unverified");
  EXPECT_NE(r["message"].get<std::string>().find("does not end with the sealed event"), std::string::npos)
      << r["message"];
  // Nothing was decided or finished from the forged events.
  json m = p.manifest(id);
  EXPECT_EQ(m["status"], "awaiting_approval");
  EXPECT_FALSE(m.contains("verdict"));
  Ran v = p.runs({"verify", id});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("TAMPERED"), std::string::npos) << v.out;
}

TEST(Evidence, PromotionRefusesWhatDoesNotApplyOrWouldMoveACheckout) {
  ApprovalProject p;
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  auto r = p.run(c);
  ASSERT_EQ(r.ran.exit_code, 0) << r.ran.err;
  std::string id = r.manifest["run_id"];
  // The checked-out branch is never moved under the user's files.
  Ran checked_out = p.cli({"evidence", "promote", id, "--branch", "main"});
  EXPECT_EQ(checked_out.exit_code, 1);
  EXPECT_NE(checked_out.err.find("checked out"), std::string::npos) << checked_out.err;
  // A branch where the same line changed differently: the patch does not apply, git says why.
  p.git("branch other");
  Ran w =
      sh("git worktree add -q ../other-wt other && cd ../other-wt && sed -i s/Helo/Howdy/ src/greeting.sh && "
         "git -c user.name=t -c user.email=t@localhost commit -qam howdy && cd - >/dev/null && "
         "git worktree remove ../other-wt",
         p.repo);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  std::string other_before = p.git("rev-parse other");
  json refused = p.cli_json({"evidence", "promote", id, "--branch", "other"}, 1);
  EXPECT_EQ(refused["outcome"], "refused");
  EXPECT_NE(refused["message"].get<std::string>().find("does not apply cleanly"), std::string::npos)
      << refused["message"];
  EXPECT_NE(refused["message"].get<std::string>().find("src/greeting.sh"), std::string::npos)
      << refused["message"];
  EXPECT_EQ(p.git("rev-parse other"), other_before);
  EXPECT_FALSE(p.manifest(id).contains("evidence"));
  // An invalid branch name is refused before git is asked to make anything.
  EXPECT_EQ(p.cli({"evidence", "promote", id, "--branch", "bad..name"}).exit_code, 1);
  // Rejecting the evidence records the decision.
  json rej = p.cli_json({"evidence", "reject", id, "--reason", "not needed"}, 0);
  EXPECT_EQ(rej["evidence"]["decision"], "rejected");
  EXPECT_EQ(p.manifest(id)["evidence"]["reason"], "not needed");
  EXPECT_EQ(p.event_types(id).back(), "EVIDENCE_REJECTED");
  p.expect_sound(id);
}

TEST(WorkflowCases, CaseJsonAfterTwoRunsOfOneWorkflow) {
  ApprovalProject p;
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["workflow_id"] = "wf-greeting";
  auto r1 = p.run(c);
  ASSERT_EQ(r1.ran.exit_code, 0);
  c["runtime_options"]["commands"] = json::array({"false"});
  auto r2 = p.run(c);
  ASSERT_EQ(r2.ran.exit_code, 4);
  fs::path file = p.dir / ".runtime-cache/cortexpilot/workflow-cases/wf-greeting/case.json";
  ASSERT_TRUE(fs::exists(file));
  json k = json::parse(read_file(file));
  expect_valid("workflow_case", k, "case.json");
  EXPECT_EQ(k["run_count"], 2);
  EXPECT_EQ(k["runs"][0]["run_id"], r1.manifest["run_id"]);
  EXPECT_EQ(k["runs"][1]["run_id"], r2.manifest["run_id"]);
  EXPECT_EQ(k["latest_run_id"], r2.manifest["run_id"]);
  EXPECT_EQ(k["verdict"], "failure");
  EXPECT_EQ(k["outcomes"]["success"], 1);
  EXPECT_EQ(k["outcomes"]["failure"], 1);
  // The read model is the newest run's persisted binding, not a second derivation.
  EXPECT_EQ(k["workflow_case_read_model"]["role_binding_summary"], r2.manifest["role_binding_summary"]);
  EXPECT_EQ(r2.manifest["role_binding_summary"]["assigned"]["role"], "WORKER");
  EXPECT_EQ(r2.manifest["role_binding_summary"]["assigned"]["runner_allowed"], true);

  json list = p.cli_json({"workflows", "list"}, 0);
  ASSERT_EQ(list["count"], 1);
  EXPECT_EQ(list["workflows"][0]["workflow_id"], "wf-greeting");
  EXPECT_EQ(list["workflows"][0]["run_count"], 2);
  // The snapshot can always be rebuilt from the bundles, to the same runs.
  fs::remove(file);
  EXPECT_EQ(p.cli({"workflows", "rebuild", "wf-greeting"}).exit_code, 0);
  json rebuilt = json::parse(read_file(file));
  EXPECT_EQ(rebuilt["runs"], k["runs"]);
  EXPECT_EQ(p.cli({"workflows", "show", "nope"}).exit_code, 1);
}

TEST(Replay, ReplayRerunsTheCompiledContractAndCompareSaysWhatChanged) {
  ApprovalProject p;
  auto orig = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(orig.ran.exit_code, 0);
  std::string a = orig.manifest["run_id"];
  // The contract file and the branch move on; the replay still runs what was compiled, where it started.
  write_file(p.dir / "contracts/task.json", "{\"changed\": true}");
  write_file(p.repo / "src/other.txt", "later\n");
  ASSERT_EQ(
      sh("git add -A && git -c user.name=t -c user.email=t@localhost commit -qm later", p.repo).exit_code, 0);

  json out = p.cli_json({"replay", a, "--quiet"}, 0);
  std::string b = out["run_id"];
  json mb = p.manifest(b);
  EXPECT_EQ(mb["replay_of"], a);
  EXPECT_EQ(mb["contract_sha256"], orig.manifest["contract_sha256"]);
  EXPECT_EQ(mb["baseline_commit"], orig.manifest["baseline_commit"]);
  EXPECT_EQ(read_file(p.dir / ".runtime-cache/cortexpilot/runs" / b / "contract.json"),
            read_file(orig.bundle / "contract.json"));

  json rep = p.report(b, "run_compare_report");
  expect_valid("run_compare_report", rep, "run_compare_report");
  EXPECT_EQ(rep["a"]["run_id"], a);
  EXPECT_EQ(rep["b"]["run_id"], b);
  EXPECT_TRUE(rep["replay"].get<bool>());
  EXPECT_TRUE(rep["same_contract"].get<bool>());
  EXPECT_EQ(rep["verdict"], (json{{"a", "success"}, {"b", "success"}, {"same", true}}));
  EXPECT_TRUE(rep["diff_stats"]["same_patch"].get<bool>());
  EXPECT_EQ(rep["diff_stats"]["a"]["insertions"], 1);
  EXPECT_EQ(rep["diff_stats"]["a"]["deletions"], 1);
  EXPECT_EQ(rep["changed_files"]["both"], json::array({"src/greeting.sh"}));
  for (const auto& g : rep["gates"]) EXPECT_TRUE(g["same"].get<bool>()) << g;
  bool saw_sealed = false;
  for (const auto& e : rep["event_types"])
    if (e["type"] == "RUN_SEALED") saw_sealed = e["a"] == 1 && e["b"] == 1;
  EXPECT_TRUE(saw_sealed) << rep["event_types"];

  // A run that failed against the one that passed: every difference named.
  auto bad = p.run(p.contract({"sed -i s/Helo/Hola/ src/greeting.sh"}));
  ASSERT_EQ(bad.ran.exit_code, 4);
  std::string c = bad.manifest["run_id"];
  json cmp = p.cli_json({"compare", a, c}, 0);
  expect_valid("run_compare_report", cmp, "compare report");
  EXPECT_EQ(cmp["verdict"], (json{{"a", "success"}, {"b", "failure"}, {"same", false}}));
  EXPECT_FALSE(cmp["same_contract"].get<bool>());
  EXPECT_FALSE(cmp["diff_stats"]["same_patch"].get<bool>());
  bool acceptance_differs = false;
  for (const auto& g : cmp["gates"])
    if (g["gate_id"] == "acceptance_tests") acceptance_differs = g["a"] == "pass" && g["b"] == "fail";
  EXPECT_TRUE(acceptance_differs) << cmp["gates"];
  EXPECT_TRUE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs" / c / "reports/run_compare_report.json"));
  EXPECT_EQ(p.cli({"compare", a, "no-such-run"}).exit_code, 1);
  EXPECT_EQ(p.cli({"replay", "no-such-run"}).exit_code, 1);
}

TEST(Replay, ATamperedBundleIsNotReplayed) {
  ApprovalProject p;
  auto orig = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(orig.ran.exit_code, 0) << orig.ran.err;
  json doc = orig.read("contract.json");
  doc["contract"]["runtime_options"]["commands"] = json::array({"sed -i s/Helo/Pwned/ src/greeting.sh"});
  write_file(orig.bundle / "contract.json", doc.dump());
  Ran r = p.cli({"replay", orig.manifest["run_id"]});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("contract.json differs from the sealed file"), std::string::npos) << r.err;
  size_t bundles = 0;
  for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/runs"))
    bundles += e.path().filename().string()[0] != '.';
  EXPECT_EQ(bundles, 1u);  // nothing ran
}

TEST(IntakePreview, PredictsTheRunWithoutCreatingOne) {
  ApprovalProject p;
  json c = p.contract_high("wf-preview");
  write_file(p.dir / "contracts/task.json", c.dump(2));
  json plan = p.cli_json({"intake", "preview", (p.dir / "contracts/task.json").string()}, 0);
  expect_valid("execution_plan_report", plan, "execution_plan_report");
  EXPECT_TRUE(plan["advisory"].get<bool>());
  EXPECT_TRUE(plan["would_run"].get<bool>());
  EXPECT_EQ(plan["pack"]["requires_approval"], true);
  EXPECT_EQ(plan["predicted_outputs"]["terminal_status"], "awaiting_approval");
  auto& bundle = plan["predicted_outputs"]["bundle"];
  EXPECT_NE(std::find(bundle.begin(), bundle.end(), "reports/approval_pack.json"), bundle.end());
  EXPECT_NE(std::find(bundle.begin(), bundle.end(), "reports/gate_diff_scope.json"), bundle.end());
  EXPECT_EQ(plan["predicted_outputs"]["workspace"], json::array({"src/greeting.sh"}));
  EXPECT_EQ(plan["role_contract_summary"]["workflow_id"], "wf-preview");
  // Nothing was created under the runtime root.
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs"));
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/workflow-cases"));

  // The run then persists the very binding the preview showed.
  auto r = p.run(c);
  EXPECT_EQ(r.manifest["role_binding_summary"], plan["role_contract_summary"]["role_binding_summary"]);
  EXPECT_EQ(r.manifest["contract_sha256"], plan["contract_sha256"]);
  // Bad input: the JSON pointer, exit 2, nothing written.
  c["allowed_paths"] = 7;
  write_file(p.dir / "contracts/bad.json", c.dump(2));
  Ran bad = p.cli({"intake", "preview", (p.dir / "contracts/bad.json").string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("/allowed_paths"), std::string::npos) << bad.err;
}
