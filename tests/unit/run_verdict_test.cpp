// How a run's verdict follows from its runner and gates, and cp-host run's exit codes.
#include "run/engine.hpp"
#include "run/workspace.hpp"

#include <gtest/gtest.h>

using cp::run::decide_verdict;
using cp::run::VerdictInputs;

namespace {
VerdictInputs all_pass(const std::string& runner = "completed") {
  VerdictInputs in;
  in.runner_status = runner;
  for (const char* g : {"diff_scope", "acceptance_tests", "forbidden_actions", "required_outputs"})
    in.gates.push_back({g, "pass", true});
  return in;
}
}  // namespace

TEST(RunVerdict, SuccessNeedsACompletedRunnerAndEveryRequiredGatePassing) {
  EXPECT_EQ(decide_verdict(all_pass()).first, "success");
  auto in = all_pass();
  in.gates[1].verdict = "fail";
  EXPECT_EQ(decide_verdict(in).first, "failure");
  in = all_pass();
  in.gates[3].verdict = "error";
  EXPECT_EQ(decide_verdict(in).first, "error");
  in = all_pass();
  in.gates[1].verdict = "skipped";  // a required gate that never judged a completed run is not a pass
  EXPECT_EQ(decide_verdict(in).first, "error");
  in = all_pass();
  in.gates.push_back({"third_party", "fail", false});  // optional gates only warn
  EXPECT_EQ(decide_verdict(in).first, "success");
  EXPECT_EQ(decide_verdict(all_pass("failed")).first, "failure");
  EXPECT_EQ(decide_verdict(all_pass("error")).first, "error");
  EXPECT_EQ(decide_verdict(all_pass("weird")).first, "error");
}

TEST(RunVerdict, BrokenRulesOutrankEverythingElse) {
  auto in = all_pass("timeout");
  in.deadline_hit = true;
  in.gates[0].verdict = "fail";  // diff_scope
  EXPECT_EQ(decide_verdict(in).first, "denied");
  in = all_pass("cancelled");
  in.interrupted = true;
  in.gates[2].verdict = "fail";  // forbidden_actions
  EXPECT_EQ(decide_verdict(in).first, "denied");
  EXPECT_EQ(decide_verdict(all_pass("denied")).first, "denied");
  in = all_pass("cancelled");
  in.interrupted = true;
  EXPECT_EQ(decide_verdict(in).first, "cancelled");
  in = all_pass("cancelled");
  in.deadline_hit = true;
  EXPECT_EQ(decide_verdict(in).first, "timeout");
}

TEST(RunVerdict, ExitCodesAreDistinctPerVerdict) {
  cp::run::RunOutcome o;
  o.stage = cp::run::RunOutcome::Stage::invalid;
  EXPECT_EQ(cp::run::exit_code_for(o), 2);
  o.stage = cp::run::RunOutcome::Stage::internal;
  EXPECT_EQ(cp::run::exit_code_for(o), 3);
  o.stage = cp::run::RunOutcome::Stage::sealed;
  o.status = "sealed";
  std::set<int> codes;
  for (const char* v : {"success", "failure", "denied", "timeout", "cancelled", "error"}) {
    o.verdict = v;
    codes.insert(cp::run::exit_code_for(o));
  }
  EXPECT_EQ(codes, (std::set<int>{0, 4, 5, 6, 7, 8}));
  o.status = "awaiting_approval";
  o.verdict.clear();
  EXPECT_EQ(cp::run::exit_code_for(o), 9);
}

TEST(Workspace, NameStatusOutputIsParsedWithRenames) {
  using namespace std::string_literals;
  std::string out = "M\0src/a.sh\0R100\0old name.txt\0src/new name.txt\0D\0gone\0A\0src/new\0"s;
  auto c = cp::run::parse_name_status_z(out);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].status, "modified");
  EXPECT_EQ(c[1].status, "renamed");
  EXPECT_EQ(c[1].old_path, "old name.txt");
  EXPECT_EQ(c[1].path, "src/new name.txt");
  EXPECT_EQ(c[2].status, "deleted");
  EXPECT_EQ(c[3].path, "src/new");
}
