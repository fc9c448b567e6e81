// How a run's verdict follows from its runner and gates, and cp-host run's exit codes.
#include "run/engine.hpp"
#include "run/evidence_packs.hpp"
#include "run/workspace.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

using cp::run::decide_verdict;
using cp::run::VerdictInputs;

namespace {
VerdictInputs all_pass(const std::string& runner = "completed") {
  VerdictInputs in;
  in.runner_status = runner;
  // diff_scope and forbidden_actions declare CP_FLAG_GATE_POLICY (the shipped plugins do).
  for (const char* g : {"diff_scope", "acceptance_tests", "forbidden_actions", "required_outputs"})
    in.gates.push_back(
        {g, "pass", true, std::string(g) == "diff_scope" || std::string(g) == "forbidden_actions"});
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

// Whether a failing gate means "denied" is the descriptor's flag, never the gate's id.
TEST(RunVerdict, ARequiredPolicyGateFailingIsDeniedWhateverItsId) {
  auto in = all_pass();
  in.gates.push_back({"policy", "fail", true, true});
  EXPECT_EQ(decide_verdict(in), std::make_pair(std::string("denied"), std::string("gate policy failed")));
  in = all_pass();
  in.gates.push_back({"acme_license_rules", "fail", true, true});  // a third-party policy gate
  in.deadline_hit = true;
  EXPECT_EQ(decide_verdict(in).first, "denied");
  in = all_pass();
  in.gates[0].policy = false;  // a gate named diff_scope that does not declare the flag only fails
  in.gates[0].verdict = "fail";
  EXPECT_EQ(decide_verdict(in).first, "failure");
  in = all_pass();
  in.gates.push_back({"acme_license_rules", "warn", false, true});  // optional: its fail became a warning
  EXPECT_EQ(decide_verdict(in).first, "success");
}

// The incident pack's advice: the deciding gate's own next_action, else a line chosen by the gate's flag.
TEST(EvidencePacks, AdviceComesFromTheDecidingGatesVerdictOrIsGenericByFlag) {
  cp::test::TempDir dir;
  auto report = [&](const std::string& id, nlohmann::json doc) {
    cp::test::write_file(dir / ("reports/gate_" + id + ".json"), doc.dump());
    return nlohmann::json{{"gate_id", id},
                          {"verdict", doc["verdict"]},
                          {"required", true},
                          {"summary", ""},
                          {"report", "reports/gate_" + id + ".json"}};
  };
  cp::run::SealFacts f;
  f.verdict = "denied";
  f.gates =
      nlohmann::json::array({report("tests_like", {{"verdict", "fail"}, {"next_action", "not this one"}}),
                             report("acme_rules", {{"verdict", "fail"}, {"next_action", "Fix rule 7."}})});
  f.policy_gates = {"acme_rules"};
  EXPECT_EQ(cp::run::make_incident_pack(f, dir.path())["suggested_next_action"], "Fix rule 7.");
  f.gates[1] = report("acme_rules", {{"verdict", "fail"}});  // no advice of its own: generic, by flag
  EXPECT_EQ(
      cp::run::make_incident_pack(f, dir.path())["suggested_next_action"],
      "Gate acme_rules found that the run broke a rule: read its report (reports/gate_acme_rules.json), "
      "then change the task or the contract, and run it again.");
  f.verdict = "failure";
  f.policy_gates.clear();
  EXPECT_EQ(cp::run::make_incident_pack(f, dir.path())["suggested_next_action"], "not this one");
  f.gates[0] = report("tests_like", {{"verdict", "fail"}});
  EXPECT_EQ(cp::run::make_incident_pack(f, dir.path())["suggested_next_action"],
            "Read the failing gate's report and the runner's command results, fix the cause, and run again.");
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
