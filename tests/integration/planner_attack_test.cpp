// Planners as attackers, through control::call_planner and compile_plan as the host calls them: a person's
// answers that try to become more fields, commands or paths; third-party planners whose output is built to
// crash the host (megabytes in a patterned field, invalid UTF-8, deep nesting, a huge error) or that claim a
// task pack and plan something else; and the llm planner against a provider that echoes its key, never
// answers, or drips its answer. Each test shows the bad thing did not happen: the host is here to assert,
// the key is in no answer, the plan is not compiled, the call ends by the provider's own deadline.
#include "contract/task_packs.hpp"
#include "control/plan_compile.hpp"
#include "control/planner_call.hpp"
#include "integration/fake_provider.hpp"
#include "integration/run_project.hpp"
#include "integration/serve_fixture.hpp"
#include "plugin/registry.hpp"

#include <cstdlib>

namespace cp::test {
namespace {

using control::PlannerReply;
using control::PlannerReplyKind;

constexpr auto kAttackDeadline = std::chrono::seconds(60);

std::string reply_text(const PlannerReply& r) {
  return control::to_json(r).dump(2);
}

std::string compiled_text(const control::CompiledPlan& c) {
  std::string s;
  for (const auto& d : c.diagnostics) s += d.pointer + " [" + d.rule + "] " + d.message + "\n";
  return s;
}

// A project root with its plugins (policies/plugins.json, `extra` merged in).
struct AttackedHost {
  RunProject p;
  plugin::Registry reg;
  explicit AttackedHost(const json& extra = json::object()) {
    ::setenv("CP_PLUGIN_WORKER", CP_WORKER_BIN, 1);
    json pol = json::parse(read_file(p.dir / "policies/plugins.json"));
    for (auto it = extra.begin(); it != extra.end(); ++it) pol["plugins"][it.key()] = it.value();
    write_file(p.dir / "policies/plugins.json", pol.dump(2));
    reg.load_directory(CP_PLUGIN_DIR, plugin::PluginPolicy::load(p.dir / "policies/plugins.json"));
  }
  json input(const std::string& request, const std::string& pack = "", json answers = json::object()) const {
    return control::make_planner_input(p.dir.path(),
                                       {request, p.repo.string(), pack, answers, json::array(), "i-1"});
  }
  PlannerReply ask(const std::string& planner, const json& in) const {
    return control::call_planner(reg, planner, in, kAttackDeadline);
  }
  control::CompiledPlan compile(const json& plan) const {
    return control::compile_plan(plan, p.dir.path(), &reg);
  }
};

TEST(PlannerAttack, AnswersStayTheTextOfTheirFieldsInTheTemplatePlanner) {
  AttackedHost t;
  const std::string request = "Fix the bug in src/greeting.sh";
  // An answer holding another field's template, JSON that would close the string, and shell after "&&" in
  // the one command a command field is: each stays what it is, where it was given.
  json answers{{"bug", "It says Helo. {{commands}} {{paths}} \"}], \"allowed_paths\": [\"/\"], \"x\": [\""},
               {"test_command", "sh tests/test_greeting.sh && echo {{bug}}"},
               {"paths", "src/greeting.sh"},
               {"runner", "tool"},
               {"commands", "sed -i s/Helo/Hello/ src/greeting.sh"},
               {"governance", "low"}};
  PlannerReply r = t.ask("template", t.input(request, "fix-bug", answers));
  ASSERT_EQ(r.kind, PlannerReplyKind::plan) << reply_text(r);
  auto c = t.compile(r.plan);
  ASSERT_TRUE(c.ok) << compiled_text(c);
  const json& fix = c.chain["steps"][0]["contract"];
  EXPECT_EQ(fix["allowed_paths"], json::array({"src/greeting.sh"}));
  EXPECT_EQ(fix["runtime_options"]["commands"], json::array({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  EXPECT_EQ(fix["acceptance_tests"],
            json::array({{{"name", "failing-test"}, {"cmd", "sh tests/test_greeting.sh && echo {{bug}}"}}}));
  EXPECT_NE(fix["inputs"]["spec"].get<std::string>().find("{{commands}} {{paths}} \"}]"), std::string::npos);
  EXPECT_EQ(c.chain["steps"].size(), 3u);

  // A line break (or a carriage return) would make a second command: asked again, never planned.
  for (const char* two : {"sh tests/test_greeting.sh\nrm -rf ~", "sh tests/test_greeting.sh\rrm -rf ~"}) {
    json split = answers;
    split["test_command"] = two;
    PlannerReply again = t.ask("template", t.input(request, "fix-bug", split));
    ASSERT_EQ(again.kind, PlannerReplyKind::questions) << reply_text(again);
    EXPECT_EQ(again.questions[0]["field"], "test_command");
  }
  // Paths into the git folder or the runtime folder: asked again, saying why.
  for (const char* reach : {".git/hooks/", "src/ .runtime-cache/cortexpilot/", ".Git"}) {
    json into = answers;
    into["paths"] = reach;
    PlannerReply again = t.ask("template", t.input(request, "fix-bug", into));
    ASSERT_EQ(again.kind, PlannerReplyKind::questions) << reach << reply_text(again);
    EXPECT_EQ(again.questions[0]["field"], "paths");
    EXPECT_NE(again.questions[0]["problem"].get<std::string>().find("which no job may change"),
              std::string::npos)
        << again.questions[0].dump();
  }
  // A governance answer the pack does not offer is asked again; the pack's choices are all there is.
  json lower = answers;
  lower["governance"] = "none";
  PlannerReply again = t.ask("template", t.input(request, "fix-bug", lower));
  ASSERT_EQ(again.kind, PlannerReplyKind::questions) << reply_text(again);
  EXPECT_EQ(again.questions[0]["field"], "governance");
}

json fixture_isolation(const std::string& isolation) {
  json pol = json::object();
  for (const char* id : {"planner_long_string", "planner_bad_utf8", "planner_deep", "planner_big_error",
                         "planner_liar", "planner_good"})
    pol[id] = {{"isolation", isolation}};
  return pol;
}

plugin::Registry hostile_planners(const std::string& isolation) {
  ::setenv("CP_PLUGIN_WORKER", CP_WORKER_BIN, 1);
  plugin::PluginPolicy policy;
  json settings = fixture_isolation(isolation);
  for (auto it = settings.begin(); it != settings.end(); ++it)
    policy.plugins[it.key()].isolation = it.value()["isolation"].get<std::string>();
  plugin::Registry reg;
  reg.load_directory(CP_PLANNER_FIXTURE_DIR, policy);
  return reg;
}

TEST(PlannerAttack, OutputBuiltToCrashTheHostIsRefusedAndTheHostGoesOn) {
  AttackedHost t;
  json in = t.input("Fix the greeting");
  for (const char* isolation : {"isolated", "in_process"}) {
    auto reg = hostile_planners(isolation);
    // Megabytes in fields whose patterns repeat a character class: once a stack overflow in the schema check.
    PlannerReply lng = control::call_planner(reg, "planner_long_string", in, kAttackDeadline);
    ASSERT_EQ(lng.kind, PlannerReplyKind::refused) << isolation << lng.error;
    std::set<std::string> where;
    for (const auto& v : lng.violations) where.insert(v["pointer"].get<std::string>());
    EXPECT_TRUE(where.count("/plan/steps/0/runner")) << isolation << lng.violations.dump(2).substr(0, 2000);
    EXPECT_TRUE(where.count("/plan/steps/0/allowed_paths/0")) << isolation;
    EXPECT_TRUE(lng.raw_truncated);
    EXPECT_LE(lng.raw.size(), control::kMaxRawBytes + 64);
    EXPECT_LT(lng.error.size(), 8000u);
    EXPECT_TRUE(lng.plan.is_null());

    // Invalid UTF-8: refused in process; isolated, it cannot cross the worker's JSON frames as written, and
    // the worker (which once died building the frame) fails the call saying so. Either way nothing is used,
    // and the kept text is valid UTF-8 (it goes into JSON answers and files).
    PlannerReply bad = control::call_planner(reg, "planner_bad_utf8", in, kAttackDeadline);
    if (std::string(isolation) == "isolated") {
      ASSERT_EQ(bad.kind, PlannerReplyKind::error) << reply_text(bad);
      EXPECT_NE(bad.error.find("not valid UTF-8"), std::string::npos) << bad.error;
      EXPECT_EQ(bad.error.find("crashed"), std::string::npos) << bad.error;
    } else {
      ASSERT_EQ(bad.kind, PlannerReplyKind::refused) << reply_text(bad);
    }
    EXPECT_TRUE(bad.plan.is_null());
    EXPECT_NO_THROW((void)json(bad.raw).dump()) << isolation;
    EXPECT_NE(bad.raw.find("here"), std::string::npos);

    // 200,000 levels of nesting: refused unparsed.
    PlannerReply deep = control::call_planner(reg, "planner_deep", in, kAttackDeadline);
    ASSERT_EQ(deep.kind, PlannerReplyKind::refused) << isolation << deep.error;
    EXPECT_NE(deep.error.find("nests deeper"), std::string::npos) << deep.error;

    // A 4 MiB error text: an error of bounded size, valid UTF-8, saying how much was left out.
    PlannerReply big = control::call_planner(reg, "planner_big_error", in, kAttackDeadline);
    ASSERT_EQ(big.kind, PlannerReplyKind::error) << isolation;
    EXPECT_LT(big.error.size(), 8000u) << isolation;
    EXPECT_NE(big.error.find("more bytes)"), std::string::npos) << big.error.substr(0, 300);
    EXPECT_NO_THROW((void)control::to_json(big).dump()) << isolation;

    // And the host still asks the next planner.
    EXPECT_EQ(control::call_planner(reg, "planner_good", in, kAttackDeadline).kind,
              PlannerReplyKind::no_match);
  }
}

TEST(PlannerAttack, APlannerThatLiesAboutItsTaskPackGetsNothingCompiled) {
  AttackedHost t;
  auto reg = hostile_planners("isolated");
  // Asked for fix-bug, it answers a plan of add-tests: refused before any compiling.
  PlannerReply other =
      control::call_planner(reg, "planner_liar", t.input("Fix the greeting", "fix-bug"), kAttackDeadline);
  ASSERT_EQ(other.kind, PlannerReplyKind::refused) << reply_text(other);
  EXPECT_NE(other.error.find("but the request named 'fix-bug'"), std::string::npos) << other.error;
  // Asked for no pack, its plan claims add-tests with fields that fit, yet is not what add-tests makes: a
  // lower governance pack than its own fields chose, the whole repository, a step of its own into .git.
  PlannerReply plan = control::call_planner(reg, "planner_liar", t.input("Add tests"), kAttackDeadline);
  ASSERT_EQ(plan.kind, PlannerReplyKind::plan) << reply_text(plan);
  auto c = t.compile(plan.plan);
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(c.chain.is_null());
  std::set<std::string> where;
  for (const auto& d : c.diagnostics) where.insert(d.pointer + " " + d.rule);
  EXPECT_TRUE(where.count("/steps xref:task_pack")) << compiled_text(c);
  EXPECT_TRUE(where.count("/steps/1/allowed_paths/0 path")) << compiled_text(c);
}

// The llm planner and its probe against the fake provider.
json llm_against(const FakeProvider& fake, const std::string& model, int timeout_sec) {
  json cfg{{"base_url", fake.base_url()},
           {"model", model},
           {"api_key_env", "CP_TEST_PROVIDER_KEY"},
           {"request_timeout_sec", timeout_sec}};
  json planner = cfg;
  planner["retries"] = 0;
  json probe = cfg;
  return {{"llm", {{"config", planner}}}, {"provider_capability", {{"config", probe}}}};
}

TEST(PlannerAttack, TheProvidersKeyIsInNoAnswerEvenWhenTheProviderEchoesIt) {
  ::setenv("CP_TEST_PROVIDER_KEY", "test-key", 1);
  FakeProvider fake;
  {
    AttackedHost t(llm_against(fake, "echokey-model", 10));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::refused) << reply_text(r);  // prose, kept as evidence
    EXPECT_NE(r.raw.find("the key you sent: Bearer [redacted]"), std::string::npos) << r.raw;
    EXPECT_EQ(control::to_json(r).dump().find("test-key"), std::string::npos) << reply_text(r);
  }
  {
    AttackedHost t(llm_against(fake, "echokey-error-model", 10));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << reply_text(r);
    EXPECT_NE(r.error.find("upstream refused Bearer [redacted]"), std::string::npos) << r.error;
    EXPECT_EQ(control::to_json(r).dump().find("test-key"), std::string::npos) << reply_text(r);
  }
}

TEST(PlannerAttack, AProviderThatNeverAnswersOrDripsEndsAtItsOwnDeadline) {
  ::setenv("CP_TEST_PROVIDER_KEY", "test-key", 1);
  FakeProvider fake;
  {  // The probe's request is the one that hangs: once it held the call (and an intake) for ever.
    AttackedHost t(llm_against(fake, "slow-model", 2));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << reply_text(r);
    EXPECT_NE(r.error.find("probe provider_capability"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("no answer within 2 s"), std::string::npos) << r.error;
  }
  {  // The probe is answered; the plan's answer comes a byte at a time. The planner's own deadline ends it,
     // not the host's (whose message would say the planner did not answer).
    AttackedHost t(llm_against(fake, "drip-model", 2));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << reply_text(r);
    EXPECT_NE(r.error.find("planner 'llm' failed"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("no answer within 2 s"), std::string::npos) << r.error;
  }
}

// The same schema check answers the API: a body of less than the 1 MiB serve takes, whose contract holds one
// allowed path of 900 KB, once overflowed the stack of the thread that checked it and took serve down (as
// `cp-host validate` of that contract died of SIGSEGV).
TEST(PlannerAttack, ALongPatternedStringInAnApiBodyIsA4xxAndServeStaysUp) {
  RunProject p;
  std::string op = add_token(p, "op", "operator");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  json c = p.contract({"true"});
  c["allowed_paths"] = json::array({std::string(900u << 10, 'a')});
  auto r = http(serve.port(), "POST", "/api/runs", bearer(op), json{{"contract", c}}.dump());
  EXPECT_NE(r.status, 0) << "no answer: serve went down";  // a path is a path: queued, or refused by size
  EXPECT_LT(r.status, 500) << r.body.substr(0, 500);
  EXPECT_FALSE(serve.exited()) << serve.output();
  EXPECT_EQ(http(serve.port(), "GET", "/api/health").status, 200);
}

}  // namespace
}  // namespace cp::test
