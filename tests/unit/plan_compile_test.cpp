// compile_plan (control/plan_compile.hpp): a plan becomes the shared chain document with its contracts
// inline, each of which `cp-host validate` accepts; anything wrong in the plan is a diagnostic pointing into
// the plan, and the plan is then not compiled.
#include "control/plan_compile.hpp"
#include "plugin/registry.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A root like an operator's: the shipped packs (governance and task) and policies.
class PlanRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"packs", "policies"})
      fs::copy(fs::path(CP_SOURCE_DIR) / d, root_ / d, fs::copy_options::recursive);
    reg_.load_directory(CP_PLUGIN_DIR, cp::plugin::PluginPolicy::load(root_ / "policies/plugins.json"));
  }

  static json work_step(const std::string& id, const std::string& role) {
    return {{"step_id", id},
            {"kind", "task"},
            {"role", role},
            {"title", "Step " + id},
            {"runner", "tool"},
            {"pack", "low"},
            {"instruction", "Do " + id + "."},
            {"allowed_paths", {"src/"}},
            {"commands", {"sed -i s/Helo/Hello/ src/greeting.sh"}},
            {"acceptance_tests", {{{"name", "greeting"}, {"cmd", "sh tests/test_greeting.sh"}}}}};
  }

  static json plan_of(json steps) {
    return {{"schema_version", 1},
            {"task_pack", nullptr},
            {"title", "Fix the greeting"},
            {"summary", "The greeting says Helo."},
            {"steps", std::move(steps)}};
  }

  cp::control::CompiledPlan compile(const json& plan) {
    return cp::control::compile_plan(plan, root_.path(), &reg_);
  }

  static const cp::contract::Diagnostic* at(const cp::control::CompiledPlan& c, const std::string& pointer) {
    for (const auto& d : c.diagnostics)
      if (d.pointer == pointer) return &d;
    return nullptr;
  }
  static std::string all(const cp::control::CompiledPlan& c) {
    std::string s;
    for (const auto& d : c.diagnostics) s += d.pointer + " [" + d.rule + "] " + d.message + "\n";
    return s;
  }

  cp::test::TempDir root_;
  cp::plugin::Registry reg_;
};

}  // namespace

TEST_F(PlanRoot, AGoodPlanBecomesAChainWhoseContractsValidate) {
  json handoff{{"step_id", "to-testing"},
               {"kind", "handoff"},
               {"from_role", "WORKER"},
               {"to_role", "TESTING"},
               {"summary", "Fixed."}};
  json verify = work_step("verify", "TESTING");
  verify.erase("commands");
  verify["depends_on"] = {"fix"};
  json plan = plan_of({work_step("fix", "WORKER"), handoff, verify});
  plan["baseline_ref"] = "main";
  auto c = compile(plan);
  ASSERT_TRUE(c.ok) << all(c);
  const json& chain = c.chain;
  EXPECT_EQ(chain["schema_version"], 1);
  EXPECT_EQ(chain["chain_id"].get<std::string>().rfind("plan-", 0), 0u);
  EXPECT_EQ(chain["chain_id"].get<std::string>().size(), 17u);  // plan- and 12 hex
  EXPECT_EQ(chain["lifecycle"]["require_pm_loop"], false);
  ASSERT_EQ(chain["steps"].size(), 3u);
  const json& fix = chain["steps"][0]["contract"];
  EXPECT_TRUE(fix.is_object());
  EXPECT_EQ(fix["task_id"], chain["chain_id"].get<std::string>() + "-fix");
  EXPECT_EQ(fix["assigned_agent"]["role"], "WORKER");
  EXPECT_EQ(fix["task_type"], "code_change");
  EXPECT_EQ(fix["inputs"]["spec"], "Do fix.");
  EXPECT_EQ(fix["runtime_options"]["commands"][0], "sed -i s/Helo/Hello/ src/greeting.sh");
  EXPECT_EQ(fix["rollback"]["baseline_ref"], "main");
  EXPECT_EQ(chain["steps"][1]["kind"], "handoff");
  EXPECT_EQ(chain["steps"][2]["depends_on"], json::array({"fix"}));
  EXPECT_EQ(chain["steps"][2]["contract"]["task_type"], "test");

  // The same contracts as files: `validate` accepts every one.
  cp::contract::ValidateOptions vo;
  for (size_t i : {0u, 2u}) {
    fs::path f = root_ / ("contracts/step" + std::to_string(i) + ".json");
    cp::test::write_file(f, chain["steps"][i]["contract"].dump(2));
    vo.paths.push_back(f);
  }
  vo.root = root_.path();
  vo.registry = &reg_;
  auto rep = cp::contract::validate(vo);
  for (const auto& d : rep.diagnostics) ADD_FAILURE() << cp::contract::diagnostic_line(d);
  // The chain id depends on the plan: another plan, another id.
  plan["title"] = "Fix the greeting again";
  EXPECT_NE(compile(plan).chain["chain_id"], chain["chain_id"]);
}

TEST_F(PlanRoot, APlanBreakingItsSchemaIsRefusedWithPointers) {
  json bad = work_step("fix", "WORKER");
  bad["allowed_paths"] = {"../outside"};
  json handoff{{"step_id", "h"},       {"kind", "handoff"}, {"from_role", "WORKER"},
               {"to_role", "TESTING"}, {"summary", "x"},    {"runner", "tool"}};
  auto c = compile(plan_of({bad, handoff}));
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(c.chain.is_null());
  ASSERT_NE(at(c, "/steps/0/allowed_paths/0"), nullptr) << all(c);
  EXPECT_EQ(at(c, "/steps/0/allowed_paths/0")->rule, "pattern");
  ASSERT_NE(at(c, "/steps/1"), nullptr) << all(c);  // a handoff runs nothing: no runner
  auto no_steps = compile(json{{"schema_version", 1}, {"title", "x"}, {"summary", "y"}, {"steps", "fix it"}});
  ASSERT_NE(at(no_steps, "/steps"), nullptr) << all(no_steps);
}

TEST_F(PlanRoot, EachContractIsValidatedAgainstTheRootsPluginsPacksAndRoles) {
  json runner = work_step("a", "WORKER");
  runner["runner"] = "nosuch";
  json pack = work_step("b", "WORKER");
  pack["pack"] = "nosuch";
  json role = work_step("c", "REVIEWER");
  role["runner"] = "agents";  // not among the REVIEWER role's allowed runners (policies/role_config.json)
  role["task_type"] = "review";
  auto c = compile(plan_of({runner, pack, role}));
  EXPECT_FALSE(c.ok);
  const auto* r = at(c, "/steps/0/runner");
  ASSERT_NE(r, nullptr) << all(c);
  EXPECT_EQ(r->rule, "xref:plugin");
  EXPECT_NE(r->message.find("the contract of step 'a' fails at /runtime_options/runner"), std::string::npos)
      << r->message;
  ASSERT_NE(at(c, "/steps/1/pack"), nullptr) << all(c);
  EXPECT_EQ(at(c, "/steps/1/pack")->rule, "xref:pack");
  ASSERT_NE(at(c, "/steps/2/runner"), nullptr) << all(c);
  EXPECT_EQ(at(c, "/steps/2/runner")->rule, "xref:allowed_runners");
}

TEST_F(PlanRoot, TheOrderOfStepsIsChecked) {
  json a = work_step("a", "WORKER");
  a["depends_on"] = {"b"};  // later
  json b = work_step("b", "WORKER");
  b["depends_on"] = {"nope"};
  b["parallel_group"] = "g";
  json c1 = work_step("c", "WORKER");
  json d = work_step("d", "WORKER");
  d["parallel_group"] = "g";  // the group was interrupted by c
  json h{{"step_id", "h"},
         {"kind", "handoff"},
         {"from_role", "TESTING"},
         {"to_role", "WORKER"},
         {"summary", "x"}};
  json e = work_step("a", "WORKER");  // a second "a"
  e["depends_on"] = {"h"};            // a handoff runs nothing to wait for
  auto c = compile(plan_of({a, b, c1, d, h, e}));
  EXPECT_FALSE(c.ok);
  ASSERT_NE(at(c, "/steps/0/depends_on/0"), nullptr) << all(c);
  EXPECT_NE(at(c, "/steps/0/depends_on/0")->message.find("earlier"), std::string::npos);
  ASSERT_NE(at(c, "/steps/1/depends_on/0"), nullptr) << all(c);
  EXPECT_NE(at(c, "/steps/1/depends_on/0")->message.find("no step 'nope'"), std::string::npos);
  ASSERT_NE(at(c, "/steps/3/parallel_group"), nullptr) << all(c);
  ASSERT_NE(at(c, "/steps/4/from_role"), nullptr) << all(c);
  ASSERT_NE(at(c, "/steps/5/step_id"), nullptr) << all(c);
  ASSERT_NE(at(c, "/steps/5/depends_on/0"), nullptr) << all(c);
  EXPECT_NE(at(c, "/steps/5/depends_on/0")->message.find("handoff"), std::string::npos);
}

TEST_F(PlanRoot, TheFieldsOfAPlanAreCheckedAgainstItsTaskPack) {
  json plan = plan_of({work_step("fix", "WORKER")});
  plan["task_pack"] = "fix-bug";
  plan["fields"] = {{"bug", "It says Helo."}, {"paths", {"/etc/"}}, {"colour", "red"}};
  auto c = compile(plan);
  EXPECT_FALSE(c.ok);
  const auto* missing = at(c, "/fields");
  ASSERT_NE(missing, nullptr) << all(c);
  EXPECT_NE(missing->message.find("test_command"), std::string::npos) << missing->message;
  ASSERT_NE(at(c, "/fields/paths"), nullptr) << all(c);
  ASSERT_NE(at(c, "/fields/colour"), nullptr) << all(c);
  plan["task_pack"] = "no-such-pack";
  auto unknown = compile(plan);
  ASSERT_NE(at(unknown, "/task_pack"), nullptr) << all(unknown);
}

TEST_F(PlanRoot, AReviewStepGetsOneContractPerReviewerAndItsQuorumIsChecked) {
  json reviewer{{"title", "Read the diff"},
                {"runner", "tool"},
                {"instruction", "Review the change."},
                {"allowed_paths", {"src/"}},
                {"task_type", "review"}};
  json review{{"step_id", "review"},
              {"kind", "review"},
              {"role", "REVIEWER"},
              {"title", "Review"},
              {"reviewers", {reviewer, reviewer}},
              {"quorum", 2}};
  json h{{"step_id", "h"},
         {"kind", "handoff"},
         {"from_role", "WORKER"},
         {"to_role", "REVIEWER"},
         {"summary", "x"}};
  auto c = compile(plan_of({work_step("fix", "WORKER"), h, review}));
  ASSERT_TRUE(c.ok) << all(c);
  const json& step = c.chain["steps"][2];
  ASSERT_EQ(step["reviewers"].size(), 2u);
  EXPECT_EQ(step["reviewers"][1]["task_id"], c.chain["chain_id"].get<std::string>() + "-review-r2");
  EXPECT_EQ(step["quorum"], 2);
  review["quorum"] = 3;
  auto over = compile(plan_of({work_step("fix", "WORKER"), h, review}));
  ASSERT_NE(at(over, "/steps/2/quorum"), nullptr) << all(over);
}
