// Planners through control::call_planner, as the host calls them: the shipped `template` planner (a request,
// its questions for the missing fields, the answers, the plan, the chain compiled from it, whose first
// contract then runs for real), a request no pack fits, every shipped pack planned and compiled; the `llm`
// planner against the fake OpenAI-compatible provider (a good plan, a plan that breaks its schema and prose
// — both refused with the text kept —, a refused key and a failing provider, said by the probe or by the
// planner); and third-party planners that crash, answer garbage, hang or try to start a process: the host
// goes on and fails closed every time.
#include "contract/task_packs.hpp"
#include "control/plan_compile.hpp"
#include "control/planner_call.hpp"
#include "integration/fake_provider.hpp"
#include "integration/run_project.hpp"
#include "plugin/registry.hpp"

#include <cstdlib>

namespace cp::test {
namespace {

using control::PlannerReply;
using control::PlannerReplyKind;

constexpr auto kDeadline = std::chrono::seconds(30);

std::string show(const PlannerReply& r) {
  return control::to_json(r).dump(2);
}

std::string diagnostics_text(const control::CompiledPlan& c) {
  std::string s;
  for (const auto& d : c.diagnostics) s += d.pointer + " [" + d.rule + "] " + d.message + "\n";
  return s;
}

// The project root's plugins (policies/plugins.json applied, `extra` entries merged into it).
struct Planners {
  RunProject p;
  plugin::Registry reg;
  explicit Planners(const json& extra = json::object()) {
    ::setenv("CP_PLUGIN_WORKER", CP_WORKER_BIN, 1);
    json pol = json::parse(read_file(p.dir / "policies/plugins.json"));
    for (auto it = extra.begin(); it != extra.end(); ++it) pol["plugins"][it.key()] = it.value();
    write_file(p.dir / "policies/plugins.json", pol.dump(2));
    reg.load_directory(CP_PLUGIN_DIR, plugin::PluginPolicy::load(p.dir / "policies/plugins.json"));
  }
  json input(const std::string& request, const std::string& pack = "", json answers = json::object(),
             json asked = json::array()) const {
    return control::make_planner_input(p.dir.path(),
                                       {request, p.repo.string(), pack, answers, asked, "intake-1"});
  }
  PlannerReply ask(const std::string& planner, const json& in) const {
    return control::call_planner(reg, planner, in, kDeadline);
  }
  control::CompiledPlan compile(const json& plan) const {
    return control::compile_plan(plan, p.dir.path(), &reg);
  }
};

TEST(TemplatePlanner, RequestQuestionsAnswersPlanAndAChainWhoseContractsValidateAndRun) {
  Planners t;
  const std::string request =
      "The greeting in src/greeting.sh says Helo instead of Hello; please fix the bug.";
  json in = t.input(request);
  EXPECT_TRUE(core::schema("planner_input").valid(in));
  EXPECT_EQ(in["task_packs"].size(), 5u);

  // The pack is found from the words; bug (the whole request) and paths ("in src/greeting.sh") are read from
  // them, runner and governance have defaults: only the test command is asked.
  PlannerReply first = t.ask("template", in);
  ASSERT_EQ(first.kind, PlannerReplyKind::questions) << show(first);
  EXPECT_EQ(first.task_pack, "fix-bug");
  ASSERT_EQ(first.questions.size(), 1u) << show(first);
  EXPECT_EQ(first.questions[0]["field"], "test_command");
  EXPECT_EQ(first.questions[0]["id"], "test_command-1");
  EXPECT_NE(first.questions[0]["text"].get<std::string>().find("test"), std::string::npos);
  EXPECT_TRUE(core::schema("planner_output").valid(json::parse(first.raw)));

  json answers{{"test_command", "sh tests/test_greeting.sh"},
               {"runner", "tool"},
               {"commands", "sed -i s/Helo/Hello/ src/greeting.sh"},
               {"governance", "low"}};
  PlannerReply second = t.ask("template", t.input(request, "", answers, first.questions));
  ASSERT_EQ(second.kind, PlannerReplyKind::plan) << show(second);
  EXPECT_EQ(second.task_pack, "fix-bug");
  const json& plan = second.plan;
  EXPECT_EQ(plan["fields"]["paths"], json::array({"src/greeting.sh"}));
  EXPECT_EQ(plan["fields"]["bug"], request);
  EXPECT_EQ(plan["steps"][0]["commands"], json::array({"sed -i s/Helo/Hello/ src/greeting.sh"}));

  auto compiled = t.compile(plan);
  ASSERT_TRUE(compiled.ok) << diagnostics_text(compiled);
  const json& chain = compiled.chain;
  EXPECT_EQ(chain["chain_id"].get<std::string>().rfind("fix-bug-", 0), 0u);
  ASSERT_EQ(chain["steps"].size(), 3u);
  const json& fix = chain["steps"][0]["contract"];
  EXPECT_EQ(fix["allowed_paths"], json::array({"src/greeting.sh"}));
  EXPECT_EQ(fix["acceptance_tests"][0]["cmd"], "sh tests/test_greeting.sh");
  EXPECT_NE(fix["inputs"]["spec"].get<std::string>().find("Helo instead of Hello"), std::string::npos);
  EXPECT_EQ(chain["steps"][2]["contract"]["runtime_options"]["runner"], "tool");

  // The compiled contract is a contract cp-host runs: the typo is fixed and the test passes.
  auto run = t.p.run(fix);
  ASSERT_EQ(run.ran.exit_code, 0) << run.ran.out << run.ran.err;
  EXPECT_EQ(run.manifest["verdict"], "success");
}

TEST(TemplatePlanner, AnAnswerOfTheWrongFormIsAskedAgainSayingWhy) {
  Planners t;
  const std::string request = "Fix the bug in src/greeting.sh: it says Helo";
  PlannerReply first = t.ask("template", t.input(request));
  ASSERT_EQ(first.kind, PlannerReplyKind::questions) << show(first);
  json answers{{"test_command", "sh tests/test_greeting.sh\nrm -rf /"}, {"paths", "../elsewhere"}};
  PlannerReply again = t.ask("template", t.input(request, "", answers, first.questions));
  ASSERT_EQ(again.kind, PlannerReplyKind::questions) << show(again);
  std::map<std::string, json> by_field;
  for (const auto& q : again.questions) by_field[q["field"]] = q;
  ASSERT_TRUE(by_field.count("test_command")) << show(again);
  EXPECT_EQ(by_field["test_command"]["id"], "test_command-2");
  EXPECT_NE(by_field["test_command"]["problem"].get<std::string>().find("one line"), std::string::npos);
  ASSERT_TRUE(by_field.count("paths")) << show(again);
  EXPECT_NE(by_field["paths"]["problem"].get<std::string>().find(".."), std::string::npos);
}

TEST(TemplatePlanner, ARequestNoPackFitsGetsAClearNoMatch) {
  Planners t;
  PlannerReply r = t.ask("template", t.input("Order a pizza with extra cheese for the team lunch"));
  ASSERT_EQ(r.kind, PlannerReplyKind::no_match) << show(r);
  EXPECT_NE(r.reason.find("fits no task pack"), std::string::npos) << r.reason;
  std::set<std::string> suggested;
  for (const auto& s : r.suggestions) suggested.insert(s["task_pack"]);
  EXPECT_EQ(suggested,
            (std::set<std::string>{"fix-bug", "add-tests", "dependency-bump", "docs-update", "page-brief"}));
  EXPECT_TRUE(r.questions.empty());
  EXPECT_TRUE(r.plan.is_null());

  PlannerReply named = t.ask("template", t.input("anything", "no-such-pack"));
  ASSERT_EQ(named.kind, PlannerReplyKind::no_match) << show(named);
  EXPECT_NE(named.reason.find("no task pack named 'no-such-pack'"), std::string::npos) << named.reason;
}

TEST(TemplatePlanner, EveryShippedPackPlansAndCompiles) {
  Planners t;
  const std::map<std::string, json> answers{
      {"fix-bug",
       {{"bug", "It says Helo."},
        {"test_command", "sh tests/test_greeting.sh"},
        {"paths", "src/"},
        {"runner", "tool"}}},
      {"add-tests",
       {{"target", "src/greeting.sh"}, {"test_command", "sh tests/test_greeting.sh"}, {"runner", "tool"}}},
      {"dependency-bump",
       {{"package", "lodash"},
        {"version", "4.17.21"},
        {"manifest", "package.json, package-lock.json"},
        {"test_command", "npm test"},
        {"runner", "tool"}}},
      {"docs-update",
       {{"change", "Say how to run the greeting."},
        {"docs_paths", "README.md"},
        {"check_command", "true"},
        {"runner", "tool"}}},
      {"page-brief",
       {{"url", "http://127.0.0.1:8000/"}, {"origin", "http://127.0.0.1:8000"}, {"focus", "what it lists"}}}};
  for (const auto& [pack, a] : answers) {
    PlannerReply r = t.ask("template", t.input("a job", pack, a));
    ASSERT_EQ(r.kind, PlannerReplyKind::plan) << pack << ": " << show(r);
    auto c = t.compile(r.plan);
    EXPECT_TRUE(c.ok) << pack << ":\n" << diagnostics_text(c) << r.plan.dump(2);
  }
  // Nothing would prove a docs change without its check command (the acceptance tests gate fails on none):
  // the planner asks for it rather than plan a chain that cannot pass.
  json no_check = answers.at("docs-update");
  no_check.erase("check_command");
  PlannerReply r = t.ask("template", t.input("a job", "docs-update", no_check));
  ASSERT_EQ(r.kind, PlannerReplyKind::questions) << show(r);
  ASSERT_EQ(r.questions.size(), 1u) << show(r);
  EXPECT_EQ(r.questions[0]["field"], "check_command");
}

// The llm planner and the provider_capability probe, both pointed at the fake provider.
json provider(const std::string& base_url, const std::string& model, const std::string& key_env) {
  return {{"base_url", base_url}, {"model", model}, {"api_key_env", key_env}, {"request_timeout_sec", 10}};
}

json llm_policy(const FakeProvider& fake, const std::string& planner_model,
                const std::string& probe_model = "",
                const std::string& planner_key = "CP_TEST_PROVIDER_KEY") {
  json planner = provider(fake.base_url(), planner_model, planner_key);
  planner["retries"] = 0;
  return {{"llm", {{"config", planner}}},
          {"provider_capability",
           {{"config", provider(fake.base_url(), probe_model.empty() ? planner_model : probe_model,
                                "CP_TEST_PROVIDER_KEY")}}}};
}

size_t requests_of(const FakeProvider& fake) {
  std::istringstream in(fake.requests());
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

TEST(LlmPlanner, AGoodPlanFromTheFakeProviderCompiles) {
  ::setenv("CP_TEST_PROVIDER_KEY", "test-key", 1);
  FakeProvider fake;
  Planners t(llm_policy(fake, "planner-model"));
  const std::string request = "The greeting says Helo; fix it.";
  PlannerReply first = t.ask("llm", t.input(request));
  ASSERT_EQ(first.kind, PlannerReplyKind::questions) << show(first);
  EXPECT_EQ(first.task_pack, "fix-bug");
  EXPECT_EQ(first.questions[0]["field"], "test_command");
  EXPECT_EQ(first.usage["total_tokens"], 120);
  // The model was told the request and the packs; the probe asked first.
  std::string sent = fake.requests();
  EXPECT_NE(sent.find("cp_ping"), std::string::npos);
  EXPECT_NE(sent.find("fix-bug"), std::string::npos);
  EXPECT_NE(sent.find("The greeting says Helo"), std::string::npos);

  PlannerReply second =
      t.ask("llm", t.input(request, "", {{"test_command", "sh tests/test_greeting.sh"}}, first.questions));
  ASSERT_EQ(second.kind, PlannerReplyKind::plan) << show(second);
  EXPECT_NE(second.raw.find("\"status\""), std::string::npos);
  // The probe's ok answer holds for its ttl: one probe for the two calls.
  std::istringstream lines(fake.requests());
  size_t probes = 0;
  for (std::string line; std::getline(lines, line);) probes += line.find("cp_ping") != std::string::npos;
  EXPECT_EQ(probes, 1u);
  auto c = t.compile(second.plan);
  ASSERT_TRUE(c.ok) << diagnostics_text(c);
  EXPECT_EQ(c.chain["steps"][0]["contract"]["runtime_options"]["commands"][0],
            "sed -i s/Helo/Hello/ src/greeting.sh");

  // Asked for one pack, the model asks about another: refused.
  PlannerReply other = t.ask("llm", t.input(request, "add-tests"));
  ASSERT_EQ(other.kind, PlannerReplyKind::refused) << show(other);
  EXPECT_NE(other.error.find("the questions are for task pack 'fix-bug' but the request named 'add-tests'"),
            std::string::npos)
      << other.error;
}

TEST(LlmPlanner, APlanBreakingTheSchemaOrProseIsRefusedAndKeptAsEvidence) {
  ::setenv("CP_TEST_PROVIDER_KEY", "test-key", 1);
  FakeProvider fake;
  {
    Planners t(llm_policy(fake, "badplan-model"));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::refused) << show(r);
    EXPECT_NE(r.error.find("plan_bundle.schema.json"), std::string::npos) << r.error;
    EXPECT_NE(r.raw.find("fix the bug"), std::string::npos) << r.raw;  // the model's words, kept
    std::set<std::string> where;
    for (const auto& v : r.violations) where.insert(v["pointer"]);
    EXPECT_TRUE(where.count("/plan") || where.count("/plan/steps")) << r.violations.dump(2);
    EXPECT_TRUE(r.plan.is_null());
  }
  {
    Planners t(llm_policy(fake, "prose-model"));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::refused) << show(r);
    EXPECT_EQ(r.raw, "Sure! First I would look at src/greeting.sh, then fix the typo.");
    EXPECT_NE(r.error.find("not a JSON object"), std::string::npos) << r.error;
  }
}

TEST(LlmPlanner, ARefusedKeyOrAFailingProviderIsAClearErrorAndNoPlanIsAsked) {
  FakeProvider fake;
  {  // 401: the probe says so before the planner is asked
    ::setenv("CP_TEST_PROVIDER_KEY", "wrong-key", 1);
    Planners t(llm_policy(fake, "planner-model"));
    size_t before = requests_of(fake);
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << show(r);
    EXPECT_NE(r.error.find("probe provider_capability"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("refused the credentials (HTTP 401)"), std::string::npos) << r.error;
    EXPECT_EQ(requests_of(fake), before + 1);  // the probe's request only
    EXPECT_TRUE(r.raw.empty());
  }
  ::setenv("CP_TEST_PROVIDER_KEY", "test-key", 1);
  {  // 500 for both
    Planners t(llm_policy(fake, "error-model"));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << show(r);
    EXPECT_NE(r.error.find("HTTP 500"), std::string::npos) << r.error;
  }
  {  // the probe's provider is fine, the planner's key is not: the planner says so
    ::setenv("CP_TEST_BAD_KEY", "wrong-key", 1);
    Planners t(llm_policy(fake, "planner-model", "planner-model", "CP_TEST_BAD_KEY"));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << show(r);
    EXPECT_NE(r.error.find("planner 'llm' failed"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("refused the credentials (HTTP 401: Incorrect API key provided)"),
              std::string::npos)
        << r.error;
    EXPECT_NE(r.error.find("$CP_TEST_BAD_KEY"), std::string::npos) << r.error;
  }
  {  // the planner's model fails with 500
    Planners t(llm_policy(fake, "error-model", "planner-model"));
    PlannerReply r = t.ask("llm", t.input("Fix the greeting"));
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << show(r);
    EXPECT_NE(r.error.find("answered HTTP 500: internal error"), std::string::npos) << r.error;
  }
}

// Third-party planners (isolated by default) and the same libraries run in process.
json fixture_policy(const std::string& isolation) {
  json pol = json::object();
  for (const char* id : {"planner_good", "planner_crash", "planner_garbage", "planner_off_schema",
                         "planner_hang", "planner_spawn"})
    pol[id] = {{"isolation", isolation}};
  return pol;
}

plugin::Registry fixture_registry(const std::string& isolation) {
  ::setenv("CP_PLUGIN_WORKER", CP_WORKER_BIN, 1);
  plugin::PluginPolicy policy;
  json settings = fixture_policy(isolation);
  for (auto it = settings.begin(); it != settings.end(); ++it)
    policy.plugins[it.key()].isolation = it.value()["isolation"].get<std::string>();
  plugin::Registry reg;
  reg.load_directory(CP_PLANNER_FIXTURE_DIR, policy);
  return reg;
}

TEST(PlannerFailClosed, ACrashingPlannerIsAnErrorAndTheHostGoesOn) {
  Planners t;
  auto reg = fixture_registry("isolated");
  json in = t.input("Fix the greeting");
  PlannerReply r = control::call_planner(reg, "planner_crash", in, kDeadline);
  ASSERT_EQ(r.kind, PlannerReplyKind::error) << show(r);
  EXPECT_NE(r.error.find("crashed during the call"), std::string::npos) << r.error;
  // A sanitizer build turns the segfault into an abort (abort_on_error), said the same way.
  EXPECT_TRUE(r.error.find("SIGSEGV") != std::string::npos || r.error.find("SIGABRT") != std::string::npos)
      << r.error;
  // This process, the host here, is alive and asks the next planner.
  PlannerReply good = control::call_planner(reg, "planner_good", in, kDeadline);
  EXPECT_EQ(good.kind, PlannerReplyKind::no_match) << show(good);
}

TEST(PlannerFailClosed, GarbageOrOffSchemaOutputIsRefusedWithTheTextKept) {
  Planners t;
  json in = t.input("Fix the greeting");
  for (const char* isolation : {"isolated", "in_process"}) {
    auto reg = fixture_registry(isolation);
    PlannerReply garbage = control::call_planner(reg, "planner_garbage", in, kDeadline);
    ASSERT_EQ(garbage.kind, PlannerReplyKind::refused) << isolation << show(garbage);
    EXPECT_EQ(garbage.raw, "{\"status\": \"plan\", \"plan\": {\"title\": unquoted words");
    PlannerReply off = control::call_planner(reg, "planner_off_schema", in, kDeadline);
    ASSERT_EQ(off.kind, PlannerReplyKind::refused) << isolation << show(off);
    std::set<std::string> where;
    for (const auto& v : off.violations)
      where.insert(v["pointer"].get<std::string>() + " " + v["rule"].get<std::string>());
    EXPECT_TRUE(where.count("/verdict additionalProperties")) << off.violations.dump(2);
    EXPECT_TRUE(where.count("/questions/0/field required")) << off.violations.dump(2);
    EXPECT_TRUE(off.questions.empty());
  }
}

TEST(PlannerFailClosed, AHangingPlannerEndsAtTheDeadline) {
  Planners t;
  json in = t.input("Fix the greeting");
  for (const char* isolation : {"isolated", "in_process"}) {
    auto reg = fixture_registry(isolation);
    auto t0 = std::chrono::steady_clock::now();
    PlannerReply r = control::call_planner(reg, "planner_hang", in, std::chrono::milliseconds(500));
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(r.kind, PlannerReplyKind::error) << isolation << show(r);
    EXPECT_NE(r.error.find("500 ms"), std::string::npos) << r.error;
    EXPECT_LT(took, std::chrono::seconds(10)) << isolation;
  }
}

TEST(PlannerFailClosed, APlannerMayStartNoProcess) {
  Planners t;
  json in = t.input("Fix the greeting");
  TempDir cwd;
  fs::path here = fs::current_path();
  fs::current_path(cwd.path());
  for (const char* isolation : {"isolated", "in_process"}) {
    auto reg = fixture_registry(isolation);
    PlannerReply r = control::call_planner(reg, "planner_spawn", in, kDeadline);
    ASSERT_EQ(r.kind, PlannerReplyKind::no_match) << isolation << show(r);
    EXPECT_EQ(r.reason, "spawn was refused") << isolation;
  }
  fs::current_path(here);
  EXPECT_FALSE(fs::exists(cwd / "planner-spawned"));
}

TEST(PlannerFailClosed, AnUnknownPlannerOrABadInputIsAnErrorBeforeAnyCall) {
  Planners t;
  PlannerReply none = t.ask("nosuch", t.input("x"));
  ASSERT_EQ(none.kind, PlannerReplyKind::error);
  EXPECT_NE(none.error.find("no planner plugin 'nosuch'"), std::string::npos) << none.error;
  EXPECT_NE(none.error.find("template"), std::string::npos) << none.error;  // the loaded planners are named
  PlannerReply gate = t.ask("diff_scope", t.input("x"));
  EXPECT_NE(gate.error.find("is a gate, not a planner"), std::string::npos) << gate.error;
  json bad = t.input("x");
  bad.erase("answers");
  PlannerReply input = t.ask("template", bad);
  ASSERT_EQ(input.kind, PlannerReplyKind::error);
  EXPECT_NE(input.error.find("planner_input.schema.json"), std::string::npos) << input.error;
}

}  // namespace
}  // namespace cp::test
