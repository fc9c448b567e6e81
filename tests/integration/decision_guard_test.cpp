// Decisions on runs are never taken from inside a run: `cp-host approve|reject` and `cp-host evidence
// promote|reject` refuse (exit 11, nothing read or written) when CP_RUN_ID is set, when the caller sits in a
// run's cgroup, or when an ancestor process does either; and a run whose acceptance test tries to
// god-mode approve another run leaves that run waiting; a `cp-host serve` started inside a run takes no
// decision for any token. A person outside any run still decides, recorded as an OS user.
#include "integration/serve_fixture.hpp"
#include "os/run_cgroup.hpp"

#include <unistd.h>

using namespace cp::test;

namespace {

constexpr int kFromRun = 11;

struct GuardProject : RunProject {
  std::string runs_dir() const { return (dir / ".runtime-cache/cortexpilot/runs").string(); }
  // A run of the `high` pack: its gates pass and it waits for a decision.
  std::string awaiting_run() const {
    json c = contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
    c["runtime_options"]["pack"] = "high";
    auto r = run(c);
    EXPECT_EQ(r.ran.exit_code, 9) << r.ran.out << r.ran.err;
    EXPECT_EQ(r.manifest["status"], "awaiting_approval");
    return r.manifest.value("run_id", "");
  }
  // cp-host with this root and the given arguments, "K=V" entries added to its environment.
  Ran cli(std::vector<std::string> args, const std::vector<std::string>& env = {}) const {
    std::vector<std::string> argv{CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", dir.path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_env(argv, env, dir.path());
  }
  // Everything a decision could change about a run: its manifest and its event log, byte for byte.
  std::string state(const std::string& id) const {
    fs::path b = fs::path(runs_dir()) / id;
    return read_file(b / "manifest.json") + "\n--\n" + read_file(b / "events.jsonl");
  }
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

TEST(DecisionGuard, EveryDecisionIsRefusedWhenCpRunIdIsSetAndNothingChanges) {
  GuardProject p;
  std::string id = p.awaiting_run();
  ASSERT_FALSE(id.empty());
  const std::string before = p.state(id);
  const std::vector<std::string> inside{"CP_RUN_ID=someid"};

  Ran god = p.cli({"approve", id, "--god-mode", "--reason", "x"}, inside);
  EXPECT_EQ(god.exit_code, kFromRun) << god.out << god.err;
  EXPECT_NE(god.err.find("inside a run"), std::string::npos) << god.err;
  EXPECT_NE(god.err.find("CP_RUN_ID=someid"), std::string::npos) << god.err;

  Ran as_json = p.cli({"approve", id, "--json"}, inside);
  EXPECT_EQ(as_json.exit_code, kFromRun);
  json j = json::parse(as_json.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << as_json.out;
  EXPECT_EQ(j["outcome"], "from_run");
  EXPECT_EQ(j["exit_code"], kFromRun);

  // Set but empty still says the caller was started by a run.
  EXPECT_EQ(p.cli({"reject", id, "--reason", "x"}, {"CP_RUN_ID="}).exit_code, kFromRun);
  EXPECT_EQ(p.cli({"evidence", "promote", id, "--branch", "cp/x"}, inside).exit_code, kFromRun);
  Ran ev = p.cli({"evidence", "reject", id, "--json"}, inside);
  EXPECT_EQ(ev.exit_code, kFromRun);
  EXPECT_EQ(json::parse(ev.out, nullptr, false).value("outcome", ""), "from_run") << ev.out;

  EXPECT_EQ(p.state(id), before) << "a refused decision changed the run";
  EXPECT_NE(sh("git rev-parse --verify --quiet refs/heads/cp/x", p.repo).exit_code, 0) << "promoted anyway";

  // Outside any run the same person decides, and is recorded as an OS user.
  Ran ok = p.cli({"approve", id, "--god-mode", "--reason", "reviewed", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  json m = json::parse(read_file(fs::path(p.runs_dir()) / id / "manifest.json"));
  EXPECT_EQ(m["verdict"], "success");
  const json& d = m["approval"]["decision"];
  EXPECT_EQ(d["by_kind"], "os_user");
  EXPECT_EQ(d["how"], "god_mode");
  EXPECT_FALSE(d["by"].get<std::string>().empty());
}

TEST(DecisionGuard, ACallerWithAClearedEnvironmentIsKnownByItsAncestor) {
  GuardProject p;
  std::string id = p.awaiting_run();
  ASSERT_FALSE(id.empty());
  const std::string before = p.state(id);
  // The middle shell was started with CP_RUN_ID; cp-host itself is started without it (`env -u`), as a run's
  // process would to hide. The trailing `exit` keeps the middle shell alive as cp-host's parent.
  std::string cmd = quote(CP_HOST_BIN) + " --plugins " + quote(CP_PLUGIN_DIR) + " --root " +
                    quote(p.dir.path().string()) + " approve " + id + " --god-mode --reason x";
  std::string inner = "env -u CP_RUN_ID " + cmd + "; exit $?";
  Ran r = sh("CP_RUN_ID=run-x sh -c " + quote(inner));
  EXPECT_EQ(r.exit_code, kFromRun) << r.out << r.err;
  EXPECT_NE(r.err.find("ancestor process"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CP_RUN_ID=run-x"), std::string::npos) << r.err;
  EXPECT_EQ(p.state(id), before);
}

TEST(DecisionGuard, ACallerInARunCgroupIsRefused) {
  std::string why;
  auto cg = cp::os::RunCgroup::create("guard-test-" + std::to_string(::getpid()), why);
  if (!cg) GTEST_SKIP() << "no run cgroup can be made here: " << why;
  GuardProject p;
  std::string id = p.awaiting_run();
  ASSERT_FALSE(id.empty());
  const std::string before = p.state(id);
  // The shell joins the cgroup, then becomes cp-host (exec): no CP_RUN_ID, and its parent (this test) is in
  // no run, so only the cgroup tells.
  std::string cmd = "echo $$ > " + quote((cg->path() / "cgroup.procs").string()) +
                    " && exec env -u CP_RUN_ID " + quote(CP_HOST_BIN) + " --plugins " + quote(CP_PLUGIN_DIR) +
                    " --root " + quote(p.dir.path().string()) + " reject " + id;
  Ran r = sh(cmd);
  EXPECT_EQ(r.exit_code, kFromRun) << r.out << r.err;
  EXPECT_NE(r.err.find("run cgroup"), std::string::npos) << r.err;
  EXPECT_EQ(p.state(id), before);
  EXPECT_TRUE(cg->destroy());
}

TEST(DecisionGuard, ARunsAcceptanceTestCannotApproveAnotherRun) {
  GuardProject p;
  std::string waiting = p.awaiting_run();
  ASSERT_FALSE(waiting.empty());
  const std::string before = p.state(waiting);
  // The second run's acceptance test tries to god-mode approve the first one: once as it is, once with a
  // cleared environment. It writes what cp-host answered into its scratch folder, the one place outside its
  // worktree a run may write.
  std::string cmd = quote(CP_HOST_BIN) + " --plugins " + quote(CP_PLUGIN_DIR) + " --root " +
                    quote(p.dir.path().string()) + " approve " + waiting + " --god-mode --reason x";
  // Leak checking is off for this nested cp-host: under the sandbox's seccomp filter LeakSanitizer cannot
  // ptrace its own threads (the sanitizer build only; a release cp-host has no such check).
  p.commit("tests/approve_other.sh",
           "log=\"$CP_SCRATCH_DIR/approve.log\"\nexport ASAN_OPTIONS=detect_leaks=0\n" + cmd +
               " > \"$log.plain\" 2>&1; echo \"plain $?\" >> \"$log\"\n" +
               "env -i ASAN_OPTIONS=detect_leaks=0 " + cmd +
               " > \"$log.cleared\" 2>&1; echo \"cleared $?\" >> \"$log\"\n");
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["acceptance_tests"] = json::array({{{"name", "approve-other"},
                                        {"cmd", "sh tests/approve_other.sh"},
                                        {"must_pass", true},
                                        {"timeout_sec", 60}}});
  auto r = p.run(c);
  ASSERT_TRUE(r.manifest.is_object()) << r.ran.out << r.ran.err;

  // The waiting run is untouched: still waiting, not one byte of its manifest or log changed.
  EXPECT_EQ(p.state(waiting), before);
  json m = json::parse(read_file(fs::path(p.runs_dir()) / waiting / "manifest.json"));
  EXPECT_EQ(m["status"], "awaiting_approval");

  // Both attempts ran, and both were refused as coming from inside a run.
  fs::path scratch = r.bundle / "artifacts/scratch";
  std::string log = read_file(scratch / "approve.log");
  EXPECT_NE(log.find("plain " + std::to_string(kFromRun)), std::string::npos)
      << log << read_file(scratch / "approve.log.plain");
  EXPECT_NE(log.find("cleared " + std::to_string(kFromRun)), std::string::npos)
      << log << read_file(scratch / "approve.log.cleared");
}

TEST(DecisionGuard, AServerStartedInsideARunTakesNoDecisionWhateverTheToken) {
  GuardProject p;
  std::string id = p.awaiting_run();
  ASSERT_FALSE(id.empty());
  const std::string before = p.state(id);
  std::string admin = add_token(p, "ada-admin", "admin");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"},
                     {"CP_RUN_ID=run-y"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  auto h = bearer(admin);
  h["Content-Type"] = "application/json";
  for (const std::string route : {"approve", "god-mode-approve", "reject", "evidence/reject"}) {
    auto r = http(serve.port(), "POST", "/api/runs/" + id + "/" + route, h, json{{"reason", "x"}}.dump());
    EXPECT_EQ(r.status, 403) << route << ": " << r.body;
    EXPECT_EQ(json::parse(r.body, nullptr, false)["error"].value("code", ""), "from_run") << r.body;
  }
  auto promote =
      http(serve.port(), "POST", "/api/runs/" + id + "/evidence/promote", h, json{{"branch", "cp/x"}}.dump());
  EXPECT_EQ(promote.status, 403) << promote.body;
  EXPECT_EQ(p.state(id), before);
}
