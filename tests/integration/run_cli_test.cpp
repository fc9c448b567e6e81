// `cp-host run` end to end: the real binary, real plugins, a real git repository per test, real processes.
// Each test builds a project root (packs/, policies/ copied from the source tree) and a small repo, runs a
// contract, and checks the verdict, the exit code and the bundle's files against their schemas.
#include "integration/run_project.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

using cp::test::Ran;
using nlohmann::json;
namespace fs = std::filesystem;

extern char** environ;

using namespace cp::test;

TEST(RunCli, PassingRunSealsSuccessWithProofPackAndLeavesTheCheckoutAlone) {
  RunProject p;
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(r.ran.exit_code, 0) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "success");
  ASSERT_EQ(r.manifest["gates"].size(), 4u);
  for (const auto& g : r.manifest["gates"]) EXPECT_EQ(g["verdict"], "pass") << g.dump();
  expect_bundle_valid(p, r);
  json proof = r.read("reports/proof_pack.json");
  EXPECT_EQ(proof["changes"], json::parse(R"([{"path":"src/greeting.sh","status":"modified"}])"));
  EXPECT_NE(cp::test::read_file(r.bundle / "artifacts/diff.patch").find("+echo \"Hello, world\""),
            std::string::npos);
  EXPECT_NE(cp::test::read_file(r.bundle / "artifacts/tests/greeting/stdout.log").find("ok: greeting"),
            std::string::npos);
  // The user's checkout is untouched and the run's worktree is gone (rollback discard_worktree).
  EXPECT_NE(cp::test::read_file(p.repo / "src/greeting.sh").find("Helo,"), std::string::npos);
  EXPECT_EQ(cp::test::sh("git status --porcelain", p.repo).out, "");
  EXPECT_FALSE(fs::exists(r.manifest["worktree"].get<std::string>()));
  auto types = r.event_types();
  std::vector<std::string> want{"RUN_STARTED",      "WORKSPACE_CREATED", "SANDBOX_APPLIED", "RUNNER_STARTED",
                                "COMMAND_EXECUTED", "RUNNER_FINISHED",   "DIFF_COLLECTED",  "GATE_PASSED",
                                "GATE_PASSED",      "GATE_PASSED",       "GATE_PASSED",     "RUN_SEALED"};
  EXPECT_EQ(types, want);
  // The compiled contract holds the pack defaults and its hash is the manifest's.
  json compiled = r.read("contract.json");
  EXPECT_EQ(compiled["contract"]["budgets"]["wall_time_sec"], 300);  // the contract's own value wins
  EXPECT_EQ(compiled["contract"]["forbidden_actions"].size(), 5u);   // union with the pack's prohibitions
  Ran list = p.runs({"list", "--json"});
  EXPECT_EQ(json::parse(list.out)["runs"][0]["verdict"], "success");
  // Sealed: no longer marked live, so recovery never has to look at it again.
  EXPECT_TRUE(fs::is_empty(p.dir / ".runtime-cache/cortexpilot/runs/.live"));
}

TEST(RunCli, WriteOutsideAllowedPathsIsDeniedAndTheReportNamesThePath) {
  RunProject p;
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "cp src/greeting.sh leaked.sh"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out;
  EXPECT_EQ(r.manifest["verdict"], "denied");
  json rep = gate_report(r, "diff_scope");
  EXPECT_EQ(rep["verdict"], "fail");
  ASSERT_FALSE(rep["diagnostics"].empty());
  EXPECT_EQ(rep["diagnostics"][0]["path"], "leaked.sh");
  json incident = r.read("reports/incident_pack.json");
  EXPECT_EQ(incident["failed_gates"][0]["gate_id"], "diff_scope");
  EXPECT_NE(incident["suggested_next_action"].get<std::string>().find("allowed_paths"), std::string::npos);
  EXPECT_FALSE(fs::exists(r.bundle / "reports/proof_pack.json"));
  expect_bundle_valid(p, r);
}

TEST(RunCli, DotDotInAPathIsJudgedWhereItLands) {
  RunProject p;
  // The allowlist refuses a '..' argument outright...
  auto refused = p.run(p.contract({"cp src/greeting.sh src/../escaped.sh"}));
  EXPECT_EQ(refused.ran.exit_code, 5) << refused.ran.out;
  auto types = refused.event_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "COMMAND_REJECTED"), types.end());
  // ...and a script that uses one inside the worktree is judged where the file lands.
  cp::test::write_file(p.repo / "scripts/dotdot.sh", "cp src/greeting.sh src/../escaped.sh\n");
  ASSERT_EQ(
      cp::test::sh("git add -A && git -c user.name=t -c user.email=t@localhost commit -qm dotdot", p.repo)
          .exit_code,
      0);
  auto r = p.run(p.contract({"sh scripts/dotdot.sh"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out;
  json rep = gate_report(r, "diff_scope");
  ASSERT_FALSE(rep["diagnostics"].empty());
  EXPECT_EQ(rep["diagnostics"][0]["path"], "escaped.sh");
}

TEST(RunCli, SymlinkInsideAllowedPathsPointingOutsideIsDenied) {
  RunProject p;
  auto r = p.run(p.contract({"sh scripts/mklink.sh"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out;
  json rep = gate_report(r, "diff_scope");
  EXPECT_EQ(rep["verdict"], "fail");
  ASSERT_FALSE(rep["diagnostics"].empty());
  EXPECT_EQ(rep["diagnostics"][0]["path"], "src/passwd-link");
}

TEST(RunCli, WritesToGitIgnoredPathsAreStillJudged) {
  RunProject p;
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "sh scripts/write_ignored.sh"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out;
  json rep = gate_report(r, "diff_scope");
  ASSERT_FALSE(rep["diagnostics"].empty());
  EXPECT_EQ(rep["diagnostics"][0]["path"], "build/out.txt");
}

TEST(RunCli, FailingAcceptanceTestIsFailureWithTheLogTailInTheIncidentPack) {
  RunProject p;
  auto r = p.run(p.contract({"true"}));
  EXPECT_EQ(r.ran.exit_code, 4) << r.ran.out;
  EXPECT_EQ(r.manifest["verdict"], "failure");
  json incident = r.read("reports/incident_pack.json");
  ASSERT_EQ(incident["failed_gates"].size(), 1u);
  EXPECT_EQ(incident["failed_gates"][0]["gate_id"], "acceptance_tests");
  std::string tail = incident["log_tails"].value("artifacts/tests/greeting/stderr.log", "");
  EXPECT_NE(tail.find("FAIL: expected 'Hello, world', got 'Helo, world'"), std::string::npos)
      << incident.dump(2);
  expect_bundle_valid(p, r);
}

TEST(RunCli, HungCommandTimesOutAndNoProcessOfItsGroupSurvives) {
  RunProject p;
  json c = p.contract({"sh scripts/hang.sh"});
  c["budgets"]["wall_time_sec"] = 1;
  auto t0 = std::chrono::steady_clock::now();
  auto r = p.run(c);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.ran.exit_code, 6) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "timeout");
  EXPECT_LT(secs, 20);
  pid_t pgid = std::stoi(cp::test::read_file(hang_pid_file(p.dir.path())));
  EXPECT_FALSE(group_alive(pgid)) << "process group " << pgid << " still has members";
  auto types = r.event_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "RUN_CANCEL_REQUESTED"), types.end());
  // Tests are not run on a run that did not complete; the skip is recorded, never a pass.
  for (const auto& g : r.manifest["gates"])
    if (g["gate_id"] == "acceptance_tests") {
      EXPECT_EQ(g["verdict"], "skipped");
    }
  expect_bundle_valid(p, r);
}

TEST(RunCli, ForbiddenCommandIsDeniedEvenWhenTheAllowlistAdmitsIt) {
  RunProject p;
  json allow = json::parse(cp::test::read_file(p.dir / "policies/command_allowlist.json"));
  allow["entries"].push_back({{"id", "git-any"}, {"program", "git"}});
  cp::test::write_file(p.dir / "policies/command_allowlist.json", allow.dump(2));
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "git push origin main"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out;
  EXPECT_EQ(r.manifest["verdict"], "denied");
  // The runner refuses it before it starts, naming the action; nothing was pushed for the gate to see.
  bool named = false;
  for (const auto& e : r.events())
    if (e["type"] == "COMMAND_REJECTED")
      named =
          e["payload"]["reason"].get<std::string>().find("forbidden action 'git-push'") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST(RunCli, CommandOffTheAllowlistIsDeniedAndNeverRuns) {
  RunProject p;
  auto r = p.run(p.contract({"touch src/created.txt"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out;
  EXPECT_EQ(r.manifest["verdict"], "denied");
  auto types = r.event_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "COMMAND_REJECTED"), types.end());
  EXPECT_EQ(r.read("artifacts/changed_files.json"), json::array());
  expect_bundle_valid(p, r);
}

TEST(RunCli, AnInvalidContractExitsOneAndWritesNothing) {
  RunProject p;
  json c = p.contract({"true"});
  c.erase("task_id");
  c["allowed_paths"] = "src/";
  auto r = p.run(c);
  EXPECT_EQ(r.ran.exit_code, 1) << r.ran.out;
  EXPECT_EQ(r.out["stage"], "invalid");
  std::set<std::string> pointers;
  for (const auto& d : r.out["diagnostics"]) pointers.insert(d["pointer"]);
  EXPECT_TRUE(pointers.count("/allowed_paths")) << r.out.dump(2);
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache"));
  // A pack that does not exist is caught the same way.
  json c2 = p.contract({"true"});
  c2["runtime_options"]["pack"] = "nonexistent";
  auto r2 = p.run(c2);
  EXPECT_EQ(r2.ran.exit_code, 1);
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache"));
}

// A number beyond a double used to escape validation as an exception: exit 3 (internal) instead of 2.
TEST(RunCli, NumberTooLargeIsAnInvalidContractAndWritesNothing) {
  RunProject p;
  std::string text = p.contract({"true"}).dump(2);
  text.insert(text.find('{') + 1, "\n  \"budgets\": {\"wall_time_sec\": 1e400},");
  write_file(p.dir / "huge.json", text);
  Ran r = host({"--root", p.dir.path().string(), "run", (p.dir / "huge.json").string(), "--repo",
                p.repo.string(), "--json", "--quiet"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json out = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out << r.err;
  EXPECT_EQ(out["stage"], "invalid");
  ASSERT_EQ(out["diagnostics"].size(), 1u) << r.out;
  EXPECT_EQ(out["diagnostics"][0]["line"], 2);
  EXPECT_NE(out["diagnostics"][0]["message"].get<std::string>().find("1e400"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache"));
}

// A gate the pack names but that is not loaded used to be found only by the gate engine, after the runner
// had worked: now the run is refused before anything is written.
TEST(RunCli, PackNamingAnUnloadedGateIsRefusedBeforeTheRun) {
  RunProject p;
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  std::string pack_file = "packs/" + c["runtime_options"]["pack"].get<std::string>() + ".json";
  json pack = json::parse(read_file(p.dir / pack_file));
  const std::string ptr = "/gates/" + std::to_string(pack["gates"].size()) + "/plugin";
  pack["gates"].push_back({{"plugin", "no_such_gate"}});
  write_file(p.dir / pack_file, pack.dump(2));
  auto r = p.run(c);
  EXPECT_EQ(r.ran.exit_code, 1) << r.ran.out << r.ran.err;
  bool found = false;
  for (const auto& d : r.out["diagnostics"])
    if (d["pointer"] == ptr && d["file"].get<std::string>().find(pack_file) != std::string::npos)
      found = true;
  EXPECT_TRUE(found) << r.out.dump(2);
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs"));
}

TEST(RunCli, NotAGitRepositoryOrAnUnknownBaselineIsAUsageErrorAndWritesNothing) {
  RunProject p;
  json bad_ref = p.contract({"true"});
  bad_ref["rollback"]["baseline_ref"] = "no-such-branch";
  auto r = p.run(bad_ref);
  EXPECT_EQ(r.ran.exit_code, 2) << r.ran.out;
  EXPECT_NE(r.out.value("error", "").find("no-such-branch"), std::string::npos) << r.out.dump();
  p.repo = p.dir / "plain-folder";
  fs::create_directories(p.repo);
  auto r2 = p.run(p.contract({"true"}));
  EXPECT_EQ(r2.ran.exit_code, 2) << r2.ran.out;
  EXPECT_NE(r2.out.value("error", "").find("not a git repository"), std::string::npos) << r2.out.dump();
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs"));
}

TEST(RunCli, MissingRepositoryIsAUsageErrorAndWritesNothing) {
  RunProject p;
  p.repo = p.dir / "no-such-repo";
  auto r = p.run(p.contract({"true"}));
  EXPECT_EQ(r.ran.exit_code, 2);
  EXPECT_NE(r.out.value("error", "").find("no-such-repo"), std::string::npos);
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache"));
}

TEST(RunCli, TamperedEventsAreDetectedByRunsVerify) {
  RunProject p;
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(r.ran.exit_code, 0);
  std::string run_id = r.manifest["run_id"];
  std::string log = cp::test::read_file(r.bundle / "events.jsonl");
  std::string altered = log;
  auto pos = altered.find("\"files\":1");
  ASSERT_NE(pos, std::string::npos);
  altered.replace(pos, 9, "\"files\":0");
  cp::test::write_file(r.bundle / "events.jsonl", altered);
  Ran v = p.runs({"verify", run_id});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("TAMPERED"), std::string::npos);
  EXPECT_NE(v.out.find("hash mismatch"), std::string::npos) << v.out;
  // Dropping the last event is caught by the manifest's count.
  cp::test::write_file(r.bundle / "events.jsonl", log.substr(0, log.rfind('\n', log.size() - 2) + 1));
  v = p.runs({"verify", run_id, "--json"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_FALSE(json::parse(v.out)["ok"].get<bool>());
  // A changed gate report is caught by the proof pack's hashes.
  cp::test::write_file(r.bundle / "events.jsonl", log);
  json rep = gate_report(r, "acceptance_tests");
  rep["summary"] = "edited";
  cp::test::write_file(r.bundle / "reports/gate_acceptance_tests.json", rep.dump(2));
  v = p.runs({"verify", run_id});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("gate_acceptance_tests.json"), std::string::npos) << v.out;
  EXPECT_EQ(p.runs({"verify", "no-such-run"}).exit_code, 1);
}

namespace {

// Waits until the hang script has written its pid (the runner is mid-command). Returns its pgid.
pid_t wait_for_hang(const RunProject& p) {
  for (int i = 0; i < 200; ++i) {
    fs::path pidfile = hang_pid_file(p.dir.path());
    if (!pidfile.empty()) return std::stoi(cp::test::read_file(pidfile));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "the hang script never started";
  return -1;
}

bool wait_group_gone(pid_t pgid) {
  for (int i = 0; i < 100 && group_alive(pgid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return !group_alive(pgid);
}

fs::path only_bundle(const RunProject& p) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/runs"))
    if (e.path().filename().string()[0] != '.') dirs.push_back(e.path());
  EXPECT_EQ(dirs.size(), 1u);
  return dirs.empty() ? fs::path() : dirs[0];
}

}  // namespace

TEST(RunCli, SigtermCancelsTheRunSealsItCancelledAndKillsTheGroup) {
  RunProject p;
  pid_t pid = p.spawn_run(p.contract({"sh scripts/hang.sh"}));
  pid_t pgid = wait_for_hang(p);
  ASSERT_GT(pgid, 0);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  EXPECT_TRUE(wait_group_gone(pgid));
  json m = json::parse(cp::test::read_file(only_bundle(p) / "manifest.json"));
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["verdict"], "cancelled");
}

TEST(RunCli, KillNineMidRunIsRecoveredAsHostInterruptedAndTheChainVerifies) {
  RunProject p;
  pid_t pid = p.spawn_run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "sh scripts/hang.sh"}));
  pid_t pgid = wait_for_hang(p);
  ASSERT_GT(pgid, 0);
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  fs::path bundle = only_bundle(p);
  json before = json::parse(cp::test::read_file(bundle / "manifest.json"));
  EXPECT_EQ(before["status"], "running");
  // Simulate the crash tearing the last append.
  std::string log = cp::test::read_file(bundle / "events.jsonl");
  size_t events_before = std::count(log.begin(), log.end(), '\n');
  { std::ofstream(bundle / "events.jsonl", std::ios::app) << R"({"seq":99,"ts":"2026-)"; }

  Ran list = p.runs({"list", "--json"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.err.find("recovered run"), std::string::npos) << list.err;
  // Whatever the dead host's runner left running (the script's background sleeps) is stopped by recovery.
  EXPECT_TRUE(wait_group_gone(pgid)) << "process group " << pgid << " outlived recovery";
  json m = json::parse(cp::test::read_file(bundle / "manifest.json"));
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["verdict"], "error");
  EXPECT_EQ(m["reason"], "host_interrupted");
  Ran v = p.runs({"verify", m["run_id"]});
  EXPECT_EQ(v.exit_code, 0) << v.out;
  std::ifstream in(bundle / "events.jsonl");
  std::vector<json> ev;
  for (std::string line; std::getline(in, line);) ev.push_back(json::parse(line));
  ASSERT_EQ(ev.size(), events_before + 1);
  EXPECT_EQ(ev.back()["type"], "RUN_SEALED");
  EXPECT_EQ(ev.back()["payload"]["reason"], "host_interrupted");
  EXPECT_EQ(ev.back()["payload"]["truncated_bytes"], 21);
  // What the interrupted run had already changed is kept as evidence, and its worktree is cleaned up.
  EXPECT_NE(cp::test::read_file(bundle / "artifacts/diff.patch").find("+echo \"Hello, world\""),
            std::string::npos);
  EXPECT_FALSE(fs::exists(m["worktree"].get<std::string>()));
  expect_valid("incident_pack", json::parse(cp::test::read_file(bundle / "reports/incident_pack.json")),
               "incident");
  expect_valid("run_manifest", m, "manifest");
  // Recovery is idempotent, and a recovered run is no longer marked live.
  EXPECT_TRUE(fs::is_empty(p.dir / ".runtime-cache/cortexpilot/runs/.live"));
  EXPECT_EQ(p.runs({"recover"}).out, "nothing to recover\n");
}

TEST(RunCli, HighPackAppliesPolicyRulesAndWaitsForApproval) {
  RunProject p;
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["runtime_options"]["pack"] = "high";
  auto r = p.run(c);
  EXPECT_EQ(r.ran.exit_code, 9) << r.ran.out;
  EXPECT_EQ(r.manifest["status"], "awaiting_approval");
  EXPECT_FALSE(r.manifest.contains("verdict"));
  EXPECT_EQ(gate_report(r, "policy")["verdict"], "pass");
  json approval = r.read("reports/approval_pack.json");
  expect_valid("approval_pack", approval, "approval_pack");
  EXPECT_EQ(approval["verdict_if_approved"], "success");
  EXPECT_TRUE(fs::exists(r.manifest["worktree"].get<std::string>()));  // kept for the reviewer
  EXPECT_EQ(p.runs({"verify", r.manifest["run_id"]}).exit_code, 0);
  // A key file in the change breaks a policy rule: the `policy` gate declares CP_FLAG_GATE_POLICY (ABI 1.2),
  // so the run is denied (it was a failure while only diff_scope and forbidden_actions could deny), with the
  // rule's message.
  json c2 = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "cp src/greeting.sh src/server.pem"});
  c2["runtime_options"]["pack"] = "high";
  auto r2 = p.run(c2);
  EXPECT_EQ(r2.ran.exit_code, 5) << r2.ran.out;
  EXPECT_EQ(r2.manifest["verdict"], "denied");
  EXPECT_NE(gate_report(r2, "policy").dump().find("Key material"), std::string::npos);
}

namespace {

// The bundle of a run started in the background, once it exists.
fs::path wait_for_bundle(const RunProject& p) {
  const fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  for (int i = 0; i < 400; ++i) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(runs, ec))
      if (e.path().filename().string()[0] != '.' && fs::exists(e.path() / "events.jsonl")) return e.path();
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ADD_FAILURE() << "the run never made its bundle";
  return {};
}

int exit_of(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST(RunCli, RunsFollowPrintsEveryEventAsItComesAndEndsWithTheRunsExitCode) {
  for (const auto& [script, want] : std::vector<std::pair<std::string, int>>{
           {"sleep 1; sed -i s/Helo/Hello/ src/greeting.sh\n", 0}, {"sleep 1; exit 3\n", 4}}) {
    RunProject p;
    p.commit("scripts/slow.sh", script);
    pid_t pid = p.spawn_run(p.contract({"sh scripts/slow.sh"}));
    const fs::path bundle = wait_for_bundle(p);
    ASSERT_FALSE(bundle.empty());
    const std::string id = bundle.filename().string();
    Ran followed = p.runs({"follow", id, "--json", "--interval", "50"});
    EXPECT_EQ(exit_of(pid), want) << script;
    EXPECT_EQ(followed.exit_code, want) << followed.err;
    // Every event of the sealed log, in order, the seal last: nothing missed, nothing twice.
    std::vector<std::string> printed;
    std::istringstream lines(followed.out);
    for (std::string l; std::getline(lines, l);) printed.push_back(l);
    std::vector<std::string> logged;
    std::ifstream log(bundle / "events.jsonl");
    for (std::string l; std::getline(log, l);) logged.push_back(l);
    EXPECT_EQ(printed, logged);
    ASSERT_FALSE(printed.empty());
    EXPECT_EQ(json::parse(printed.back())["type"], "RUN_SEALED");
    EXPECT_NE(followed.err.find("sealed " + std::string(want == 0 ? "success" : "failure")),
              std::string::npos)
        << followed.err;
  }
}

// A sealed run whose manifest was rewritten to claim another verdict: follow (and queue watch, through the
// same check) answers 1 and names the problem, never the claimed verdict's 0.
TEST(RunCli, RunsFollowOfABundleChangedAfterItsSealIsOneNotTheClaimedVerdict) {
  RunProject p;
  auto r = p.run(p.contract({"exit 3"}));
  ASSERT_GT(r.ran.exit_code, 3) << r.ran.err;
  ASSERT_NE(r.manifest["verdict"], "success");
  const std::string id = r.manifest["run_id"];
  EXPECT_EQ(p.runs({"follow", id}).exit_code, r.ran.exit_code);
  json m = r.manifest;
  m["verdict"] = "success";
  cp::test::write_file(r.bundle / "manifest.json", m.dump(2));
  Ran followed = p.runs({"follow", id});
  EXPECT_EQ(followed.exit_code, 1) << followed.err;
  EXPECT_NE(followed.err.find("TAMPERED: " + id), std::string::npos) << followed.err;
  EXPECT_EQ(followed.err.find("sealed success"), std::string::npos) << followed.err;
}

TEST(RunCli, RunsFollowEndsWhenTheRunsProcessDiesWithoutASeal) {
  RunProject p;
  pid_t pid = p.spawn_run(p.contract({"sh scripts/hang.sh"}));
  pid_t pgid = wait_for_hang(p);
  ASSERT_GT(pgid, 0);
  const fs::path bundle = only_bundle(p);
  ::kill(pid, SIGKILL);
  exit_of(pid);
  Ran followed = p.runs({"follow", bundle.filename().string(), "--interval", "50"});
  EXPECT_EQ(followed.exit_code, 8) << followed.err;
  EXPECT_NE(followed.err.find("ended without a seal"), std::string::npos) << followed.err;
  EXPECT_EQ(p.runs({"follow", "no-such-run"}).exit_code, 1);
  // Recovery stops what the dead run left running.
  EXPECT_EQ(p.runs({"recover"}).exit_code, 0);
  EXPECT_TRUE(wait_group_gone(pgid));
}

// The manifest records where each plugin was loaded from and the library's sha256, not only the name and
// version a library declares of itself: a gate shadowed by a copy earlier on the search path shows.
TEST(RunCli, TheManifestRecordsEachPluginsLibraryPathAndSha256) {
  RunProject p;
  cp::test::TempDir mine;
  fs::copy_file(p.plugins / "gate_diff_scope.so", mine / "gate_diff_scope.so");
  const fs::path shipped = p.plugins;
  p.plugins = mine.path().string() + ":" + shipped.string();
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(r.ran.exit_code, 0) << r.ran.err;
  std::map<std::string, json> by_id;
  for (const auto& pl : r.manifest["plugins"]) by_id[pl["id"]] = pl;
  ASSERT_TRUE(by_id.count("diff_scope")) << r.manifest["plugins"].dump(2);
  EXPECT_EQ(by_id["diff_scope"]["library_path"], (mine / "gate_diff_scope.so").string());
  Ran sum = cp::test::sh("sha256sum '" + (mine / "gate_diff_scope.so").string() + "' | cut -c1-64");
  EXPECT_EQ(by_id["diff_scope"]["library_sha256"].get<std::string>() + "\n", sum.out);
  EXPECT_EQ(by_id["diff_scope"]["isolation"], "isolated") << "a cp-* library outside the installed folder";
  EXPECT_EQ(by_id["tool"]["isolation"], "in_process");
  ASSERT_TRUE(by_id.count("tool"));
  EXPECT_EQ(by_id["tool"]["library_path"], (shipped / "runner_tool.so").string());
}
