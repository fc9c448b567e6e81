// The command policy through `cp-host run`: escape forms the audit found are declined by the tool runner
// (the run is denied, nothing lands outside the worktree), an oversized argument gets the run's normal
// verdict instead of a crash, an acceptance test that is a forbidden action is never started, and a worktree
// pytest.py or unittest.py never runs in place of the test runner.
#include "integration/run_project.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace cp::test;

namespace {

bool has_event(const RunProject::Result& r, const std::string& type) {
  auto types = r.event_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

}  // namespace

TEST(CommandPolicyRun, EscapeFormsAreDeniedAndNothingLandsOutsideTheWorktree) {
  RunProject p;
  // Worktrees live in <root>/.runtime-cache/cortexpilot/worktrees/<run_id>: "../x" lands in worktrees/,
  // "../../x" in cortexpilot/. Every place an escape could reach holds what it would need.
  fs::path runtime = p.dir / ".runtime-cache/cortexpilot";
  fs::path elsewhere = p.dir / "elsewhere";
  fs::create_directories(runtime / "worktrees");
  fs::create_directories(elsewhere);
  std::vector<fs::path> canaries{p.dir / "canary", runtime / "canary", runtime / "worktrees/canary"};
  std::string touch = "touch " + (p.dir / "canary").string();
  cp::test::write_file(runtime / "worktrees/x.sh", touch + "\n");
  cp::test::write_file(runtime / "worktrees/x.py",
                       "open('" + (p.dir / "canary").string() + "', 'w').close()\n");
  cp::test::write_file(elsewhere / "Makefile", "all:\n\t" + touch + "\n");
  cp::test::write_file(elsewhere / "test_canary.py",
                       "open('" + (p.dir / "canary").string() + "', 'w').close()\n");
  const std::string abs = (p.dir / "canary").string(), e = elsewhere.string();
  for (const std::string& cmd : std::vector<std::string>{
           "cp src/greeting.sh " + abs,
           "cp src/greeting.sh ../../canary",
           "mkdir ../canary",
           "sed -i 's/Helo/Hello/w " + abs + "' src/greeting.sh",
           "sed -i '1e " + touch + "' src/greeting.sh",
           "sh scripts/../../x.sh",
           "python3 tools/../../x.py",
           "python3 -m unittest discover -s " + e,
           "make -C " + e,
           "git log --output=" + abs,
           "git diff --no-index " + abs + " src/greeting.sh",
       }) {
    auto r = p.run(p.contract({cmd}));
    EXPECT_EQ(r.ran.exit_code, 5) << cmd << "\n" << r.ran.out << r.ran.err;
    EXPECT_EQ(r.manifest["verdict"], "denied") << cmd;
    EXPECT_TRUE(has_event(r, "COMMAND_REJECTED")) << cmd;
    EXPECT_FALSE(has_event(r, "COMMAND_EXECUTED")) << cmd;
    for (const auto& c : canaries) EXPECT_FALSE(fs::exists(c)) << cmd << " created " << c;
  }
}

TEST(CommandPolicyRun, HugeArgumentGetsTheRunsNormalVerdict) {
  RunProject p;
  // Over the size limit: refused before it is judged, the run is denied (5), not a crash (139).
  auto big = p.run(p.contract({"sed -i s/" + std::string(200 * 1024, 'a') + "/x/ src/greeting.sh"}));
  EXPECT_EQ(big.ran.exit_code, 5) << big.ran.out << big.ran.err;
  EXPECT_EQ(big.manifest["verdict"], "denied");
  EXPECT_LT(big.manifest["reason"].get<std::string>().size(), 2000u);
  // Under it: judged in linear time and run; the fix that follows makes the run a success.
  std::string nested;
  for (int i = 0; i < 30000; ++i) nested += "((";
  auto ok = p.run(p.contract({"echo " + nested, "sed -i s/Helo/Hello/ src/greeting.sh"}));
  EXPECT_EQ(ok.ran.exit_code, 0) << ok.ran.out << ok.ran.err;
  EXPECT_EQ(ok.manifest["verdict"], "success");
}

TEST(CommandPolicyRun, ForbiddenAcceptanceTestIsNotRunAndTheGateFails) {
  RunProject p;
  fs::path canary = p.dir / "test-canary";
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["acceptance_tests"].push_back({{"name", "publishes"},
                                   {"cmd", "touch " + canary.string() + " && git push origin main"},
                                   {"must_pass", false}});
  auto r = p.run(c);
  EXPECT_EQ(r.ran.exit_code, 4) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "failure");
  EXPECT_FALSE(fs::exists(canary)) << "the forbidden test was started";
  json rep = gate_report(r, "acceptance_tests");
  EXPECT_EQ(rep["verdict"], "fail");
  EXPECT_NE(rep.dump().find("forbidden action 'git-push'"), std::string::npos) << rep.dump(2);
  EXPECT_EQ(rep["details"]["tests"][0]["passed"], true);  // the contract's own test still ran
  expect_bundle_valid(p, r);
}

namespace {

bool changed(const RunProject::Result& r, const std::string& path) {
  if (!fs::exists(r.bundle / "artifacts/changed_files.json")) return false;
  for (const auto& c : r.read("artifacts/changed_files.json"))
    if (c.value("path", "") == path) return true;
  return false;
}

}  // namespace

// `python3 -m pytest|unittest` puts the working folder first on sys.path, so a worktree pytest.py or
// unittest.py would run in place of the test runner the allowlist admits. The python3 test entries set
// PYTHONSAFEPATH=1 for the command, and the shadow never runs; with that "env" taken out of the policy the
// same run does start the shadow, which shows the test can see it.
TEST(CommandPolicyRun, WorktreeModuleCannotShadowTheTestRunner) {
  RunProject p;
  const std::string shadow = "open('src/ran-shadow', 'w').write('shadow ran')\n";
  p.commit("pytest.py", shadow);
  p.commit("unittest.py", shadow);
  p.commit("tests/test_ok.py",
           "import unittest\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n        pass\n");

  auto ut =
      p.run(p.contract({"python3 -m unittest discover -s tests", "sed -i s/Helo/Hello/ src/greeting.sh"}));
  EXPECT_EQ(ut.ran.exit_code, 0) << ut.ran.out << ut.ran.err;
  EXPECT_EQ(ut.manifest["verdict"], "success");
  EXPECT_TRUE(changed(ut, "src/greeting.sh"));
  EXPECT_FALSE(changed(ut, "src/ran-shadow")) << "the worktree's unittest.py ran";

  // pytest itself need not be installed: without it the command fails, and the shadow still must not run.
  auto pt = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "python3 -m pytest -q tests"}));
  ASSERT_TRUE(fs::exists(pt.bundle / "artifacts/changed_files.json")) << pt.ran.out << pt.ran.err;
  EXPECT_TRUE(changed(pt, "src/greeting.sh"));
  EXPECT_FALSE(changed(pt, "src/ran-shadow")) << "the worktree's pytest.py ran";

  json policy = json::parse(cp::test::read_file(p.dir / "policies/command_allowlist.json"));
  for (auto& e : policy["entries"]) e.erase("env");
  cp::test::write_file(p.dir / "policies/command_allowlist.json", policy.dump(2));
  for (const char* cmd : {"python3 -m unittest discover -s tests", "python3 -m pytest -q tests"}) {
    auto bare = p.run(p.contract({cmd}));
    EXPECT_TRUE(changed(bare, "src/ran-shadow")) << cmd << ": without PYTHONSAFEPATH the shadow should run\n"
                                                 << bare.ran.out << bare.ran.err;
  }
}
