// The codex and claude runners end to end: `cp-host run` with the real gates against the fake agent CLIs in
// tests/fakes/, which speak the real stream formats and really edit the worktree. Each scenario checks the
// verdict, the normalised events, the manifest's usage, the bundle files, and that no process of the run
// is left alive.
#include "integration/run_project.hpp"

#include <chrono>
#include <cstdlib>

using namespace cp::test;

namespace {

std::vector<std::string> fake_env(const std::string& var, const std::string& scenario) {
  std::string path =
      std::string(CP_SOURCE_DIR) + "/tests/fakes:" + (std::getenv("PATH") ? std::getenv("PATH") : "");
  return {"PATH=" + path, var + "=" + scenario};
}

json agent_contract(const RunProject& p, const std::string& runner) {
  json c = p.contract({});
  c["runtime_options"].erase("commands");
  c["runtime_options"]["runner"] = runner;
  c["assigned_agent"]["agent_id"] = runner + "-worker";
  return c;
}

// No process that carried this run's CP_RUN_ID marker is alive (zombies aside).
bool run_processes_gone(const std::string& run_id) {
  const std::string marker = "CP_RUN_ID=" + run_id;
  for (int attempt = 0; attempt < 50; ++attempt) {
    bool alive = false;
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::string name = e.path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      std::ifstream env(e.path() / "environ", std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
      if (text.find(marker) == std::string::npos) continue;
      std::ifstream st(e.path() / "stat");
      std::string stat;
      std::getline(st, stat);
      size_t close = stat.rfind(')');
      if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z') alive = true;
    }
    if (!alive) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::vector<json> events_of(const RunProject::Result& r, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : r.events())
    if (e["type"] == type) out.push_back(e["payload"]);
  return out;
}

struct Scenario {
  RunProject p;
  RunProject::Result r;
  Scenario(const std::string& runner, const std::string& scenario,
           const std::function<void(json&)>& tweak = {}) {
    json c = agent_contract(p, runner);
    if (tweak) tweak(c);
    r = p.run(c, fake_env(runner == "codex" ? "FAKE_CODEX_SCENARIO" : "FAKE_CLAUDE_SCENARIO", scenario));
    if (r.manifest.is_object()) {
      EXPECT_TRUE(run_processes_gone(r.manifest["run_id"]))
          << "a process of " << scenario << " outlived its run";
    }
  }
};

}  // namespace

TEST(CodexRunner, SuccessNormalisesTheStreamAndRecordsUsageAndThread) {
  Scenario s("codex", "success");
  ASSERT_EQ(s.r.ran.exit_code, 0) << s.r.ran.out << s.r.ran.err;
  EXPECT_EQ(s.r.manifest["verdict"], "success");
  EXPECT_EQ(s.r.manifest["thread_id"], "0199f3a2-6b1e-7c40-9d2a-3f5e8a1b2c4d");
  EXPECT_EQ(s.r.manifest["usage"]["input_tokens"], 48211);
  EXPECT_EQ(s.r.manifest["usage"]["output_tokens"], 1893);
  auto cmds = events_of(s.r, "COMMAND_EXECUTED");
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0]["exit_code"], 1);
  EXPECT_EQ(cmds[0]["status"], "failed");
  EXPECT_EQ(cmds[1]["source"], "codex");
  EXPECT_EQ(events_of(s.r, "FILE_CHANGED").at(0)["changes"][0]["path"], "src/greeting.sh");
  EXPECT_EQ(events_of(s.r, "MCP_TOOL_CALLED").at(0)["tool"], "search");
  EXPECT_EQ(events_of(s.r, "AGENT_THREAD_STARTED").size(), 1u);
  EXPECT_FALSE(events_of(s.r, "AGENT_MESSAGE").empty());
  EXPECT_EQ(cp::test::read_file(s.r.bundle / "artifacts/scratch/codex_last_message.txt"),
            "Fixed the greeting in src/greeting.sh; the test passes.");
  std::string raw = cp::test::read_file(s.r.bundle / "artifacts/codex/events.jsonl");
  EXPECT_EQ(std::count(raw.begin(), raw.end(), '\n'), 10);
  EXPECT_NE(cp::test::read_file(s.r.bundle / "artifacts/codex/stderr.log").find("noise on stderr"),
            std::string::npos);
  expect_bundle_valid(s.p, s.r);
}

TEST(CodexRunner, FailedTurnAfterRetriesIsAFailureNotDecidedByErrorLines) {
  Scenario s("codex", "fail_after_retries");
  EXPECT_EQ(s.r.ran.exit_code, 4) << s.r.ran.out;
  EXPECT_EQ(s.r.manifest["verdict"], "failure");
  EXPECT_NE(s.r.manifest["reason"].get<std::string>().find("429 Too Many Requests"), std::string::npos)
      << s.r.manifest["reason"];
  EXPECT_EQ(events_of(s.r, "AGENT_ERROR").size(), 2u);
  EXPECT_FALSE(
      fs::exists(s.r.bundle / "artifacts/scratch/codex_last_message.txt"));  // -o only on a completed turn
  for (const auto& g : s.r.manifest["gates"])
    if (g["gate_id"] == "acceptance_tests") {
      EXPECT_EQ(g["verdict"], "skipped");
    }
  expect_bundle_valid(s.p, s.r);
}

// What the agent said of its failure is kept as said in the bundle, but `cp-host run` prints it (the
// progress lines, the summary's reason) with every control character as '?': the agent never reaches the
// operator's terminal.
TEST(CodexRunner, AnAgentsEscapeSequencesNeverReachTheTerminal) {
  RunProject p;
  std::vector<std::string> argv = p.run_argv(agent_contract(p, "codex"));
  argv.pop_back();  // not --quiet: the progress lines are printed too
  Ran ran = cp::test::run_env(argv, fake_env("FAKE_CODEX_SCENARIO", "escape_failure"), p.dir.path());
  EXPECT_EQ(ran.exit_code, 4) << ran.out << ran.err;
  EXPECT_NE(ran.out.find("AGENT?]52;c;cHduZWQ=??[2J?[32mverdict success?"), std::string::npos) << ran.out;
  for (const std::string* text : {&ran.out, &ran.err})
    for (char c : *text)
      EXPECT_FALSE((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
          << "control character " << int(c) << " printed: " << *text;
  const std::string run_id = ran.out.substr(9, ran.out.find('\n') - 9);
  json m =
      json::parse(cp::test::read_file(p.dir / ".runtime-cache/cortexpilot/runs" / run_id / "manifest.json"));
  EXPECT_NE(m["reason"].get<std::string>().find("\x1b]52;"), std::string::npos)
      << "the evidence keeps what was said";
}

TEST(CodexRunner, DeclinedCommandIsRecordedButNotExecuted) {
  Scenario s("codex", "declined");
  EXPECT_EQ(s.r.ran.exit_code, 0) << s.r.ran.out;
  auto declined = events_of(s.r, "COMMAND_DECLINED");
  ASSERT_EQ(declined.size(), 1u);
  EXPECT_EQ(declined[0]["command"], "bash -lc 'rm -rf /var/cache/x'");
  json task = s.r.read("reports/task_result.json");
  bool found = false;
  for (const auto& c : task["commands"]) found = found || c["status"] == "declined";
  EXPECT_TRUE(found);
}

TEST(CodexRunner, WriteOutsideAllowedPathsIsDenied) {
  Scenario s("codex", "write_outside");
  EXPECT_EQ(s.r.ran.exit_code, 5) << s.r.ran.out;
  EXPECT_EQ(gate_report(s.r, "diff_scope")["diagnostics"][0]["path"], "outside.txt");
}

TEST(CodexRunner, HangIsStoppedAtTheWallTimeWithNothingLeftRunning) {
  auto t0 = std::chrono::steady_clock::now();
  Scenario s("codex", "hang", [](json& c) { c["budgets"]["wall_time_sec"] = 2; });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_EQ(s.r.ran.exit_code, 6) << s.r.ran.out;
  EXPECT_EQ(s.r.manifest["verdict"], "timeout");
}

TEST(CodexRunner, StreamWithoutTerminalEventIsIncompleteEvenWithExitZero) {
  Scenario s("codex", "no_terminal_event");
  EXPECT_EQ(s.r.ran.exit_code, 4) << s.r.ran.out;
  EXPECT_NE(s.r.manifest["reason"].get<std::string>().find("incomplete stream"), std::string::npos)
      << s.r.manifest["reason"];
}

TEST(CodexRunner, MalformedLinesAndUnknownTypesAreCountedAndTolerated) {
  Scenario s("codex", "malformed_line");
  EXPECT_EQ(s.r.ran.exit_code, 0) << s.r.ran.out;
  json task = s.r.read("reports/task_result.json");
  EXPECT_EQ(task["stream"]["malformed_lines"], 2);  // one broken line, one nested 100,000 levels deep
  EXPECT_EQ(task["stream"]["unknown_types"], json::parse(R"(["item.plan.delta", "item:hologram"])"));
}

TEST(CodexRunner, OlderStreamFormatsAreUnderstood) {
  Scenario a("codex", "legacy_item_type");
  EXPECT_EQ(a.r.ran.exit_code, 0) << a.r.ran.out;
  EXPECT_EQ(events_of(a.r, "COMMAND_EXECUTED").size(), 2u);
  EXPECT_FALSE(events_of(a.r, "AGENT_MESSAGE").empty());
  Scenario b("codex", "legacy_v0");
  EXPECT_EQ(b.r.ran.exit_code, 0) << b.r.ran.out;
  EXPECT_EQ(b.r.manifest["usage"]["input_tokens"], 900);
}

TEST(CodexRunner, HugeOutputStreamsToDiskWithoutBreakingTheRun) {
  Scenario s("codex", "huge_output");
  EXPECT_EQ(s.r.ran.exit_code, 0) << s.r.ran.out;
  EXPECT_GE(fs::file_size(s.r.bundle / "artifacts/codex/events.jsonl"), 100u << 20);
  EXPECT_EQ(events_of(s.r, "COMMAND_EXECUTED").size(), 102u);
}

TEST(CodexRunner, BudgetBreachStopsTheAgentAndSealsFailureWithTheFigure) {
  auto t0 = std::chrono::steady_clock::now();
  Scenario s("codex", "many_items", [](json& c) { c["budgets"]["max_turns"] = 3; });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));  // the fake would idle 30 s
  EXPECT_EQ(s.r.ran.exit_code, 4) << s.r.ran.out;
  EXPECT_EQ(s.r.manifest["reason"], "budget_exceeded: max_turns 4 > 3");
  auto b = events_of(s.r, "BUDGET_EXCEEDED");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0]["budget"], "max_turns");
  expect_bundle_valid(s.p, s.r);
}

TEST(CodexRunner, ResumeContinuesTheThreadWithCumulativeUsage) {
  RunProject p;
  json c = agent_contract(p, "codex");
  c["acceptance_tests"] = json::parse(R"([{"name": "noop", "cmd": "true"}])");
  auto first = p.run(c, fake_env("FAKE_CODEX_SCENARIO", "success"));
  ASSERT_EQ(first.ran.exit_code, 0) << first.ran.out;
  c["runtime_options"]["resume_from_run"] = first.manifest["run_id"];
  auto second = p.run(c, fake_env("FAKE_CODEX_SCENARIO", "success"));
  ASSERT_EQ(second.ran.exit_code, 0) << second.ran.out << second.ran.err;
  EXPECT_EQ(second.manifest["thread_id"], first.manifest["thread_id"]);
  EXPECT_EQ(second.manifest["resumed_from"], first.manifest["run_id"]);
  EXPECT_EQ(second.manifest["usage"]["input_tokens"], 2 * 48211);  // cumulative: replaced, not summed
  EXPECT_EQ(second.read("artifacts/changed_files.json")[0]["path"], "src/CHANGELOG.md");
  c["runtime_options"]["resume_from_run"] = "no-such-run";
  auto bad = p.run(c, fake_env("FAKE_CODEX_SCENARIO", "success"));
  EXPECT_EQ(bad.ran.exit_code, 2);
  EXPECT_NE(bad.out.value("error", "").find("no-such-run"), std::string::npos);
}

TEST(CodexRunner, MissingBinaryIsAnErrorNeverAPass) {
  RunProject p;
  cp::test::write_file(
      p.dir / "policies/plugins.json",
      R"({"policy":"plugins","plugins":{"codex":{"config":{"binary":"/nonexistent/codex"}}}})");
  auto r = p.run(agent_contract(p, "codex"), fake_env("FAKE_CODEX_SCENARIO", "success"));
  EXPECT_EQ(r.ran.exit_code, 8) << r.ran.out;
  EXPECT_EQ(r.manifest["verdict"], "error");
}

TEST(ClaudeRunner, SuccessNormalisesToolUseAndRecordsCost) {
  Scenario s("claude", "success");
  ASSERT_EQ(s.r.ran.exit_code, 0) << s.r.ran.out << s.r.ran.err;
  EXPECT_EQ(s.r.manifest["thread_id"], "5f0c2e9a-4b1d-4c7e-9f00-1a2b3c4d5e6f");
  EXPECT_DOUBLE_EQ(s.r.manifest["usage"]["cost_usd"].get<double>(), 0.1834);
  EXPECT_EQ(s.r.manifest["usage"]["turns"], 4);
  auto cmds = events_of(s.r, "COMMAND_EXECUTED");
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0]["command"], "sh tests/test_greeting.sh");
  EXPECT_EQ(cmds[0]["status"], "failed");
  EXPECT_EQ(cmds[1]["status"], "completed");
  EXPECT_EQ(events_of(s.r, "MCP_TOOL_CALLED").at(0)["server"], "docs");
  EXPECT_FALSE(events_of(s.r, "FILE_CHANGED").empty());
  expect_bundle_valid(s.p, s.r);
}

TEST(ClaudeRunner, ErrorResultsAndMissingResultAreFailures) {
  for (const char* scenario : {"failure", "max_turns", "no_result"}) {
    Scenario s("claude", scenario);
    EXPECT_EQ(s.r.ran.exit_code, 4) << scenario << ": " << s.r.ran.out;
    EXPECT_EQ(s.r.manifest["verdict"], "failure") << scenario;
  }
}

TEST(ClaudeRunner, WriteOutsideAllowedPathsIsDeniedAndHangTimesOut) {
  Scenario w("claude", "write_outside");
  EXPECT_EQ(w.r.ran.exit_code, 5) << w.r.ran.out;
  EXPECT_EQ(gate_report(w.r, "diff_scope")["diagnostics"][0]["path"], "notes.txt");
  Scenario h("claude", "hang", [](json& c) { c["budgets"]["wall_time_sec"] = 2; });
  EXPECT_EQ(h.r.ran.exit_code, 6) << h.r.ran.out;
}

TEST(CodexRunner, TokenBudgetIsCheckedAgainstTheCumulativeUsage) {
  Scenario s("codex", "success", [](json& c) { c["budgets"]["max_tokens"] = 1000; });
  EXPECT_EQ(s.r.ran.exit_code, 4) << s.r.ran.out;
  EXPECT_EQ(s.r.manifest["reason"], "budget_exceeded: max_tokens 50104 > 1000");
}

TEST(ClaudeRunner, CostBudgetAndMalformedLines) {
  Scenario cost("claude", "success", [](json& c) { c["budgets"]["max_cost_usd"] = 0.1; });
  EXPECT_EQ(cost.r.ran.exit_code, 4) << cost.r.ran.out;
  EXPECT_EQ(cost.r.manifest["reason"], "budget_exceeded: max_cost_usd 0.1834 > 0.1");
  Scenario bad("claude", "malformed_line");
  EXPECT_EQ(bad.r.ran.exit_code, 0) << bad.r.ran.out;
  json task = bad.r.read("reports/task_result.json");
  EXPECT_EQ(task["stream"]["malformed_lines"], 1);
  EXPECT_EQ(task["stream"]["unknown_types"], json::parse(R"(["brand_new_type"])"));
}

TEST(ClaudeRunner, ResumeContinuesTheRecordedSession) {
  RunProject p;
  json c = agent_contract(p, "claude");
  auto first = p.run(c, fake_env("FAKE_CLAUDE_SCENARIO", "success"));
  ASSERT_EQ(first.ran.exit_code, 0) << first.ran.out;
  c["runtime_options"]["resume_from_run"] = first.manifest["run_id"];
  auto env = fake_env("FAKE_CLAUDE_SCENARIO", "success");
  env.push_back(
      "FAKE_CLAUDE_SESSION_ID=11111111-2222-3333-4444-555555555555");  // what a new session would get
  auto second = p.run(c, env);
  ASSERT_EQ(second.ran.exit_code, 0) << second.ran.out;
  EXPECT_EQ(second.manifest["thread_id"], first.manifest["thread_id"]);
  EXPECT_EQ(second.manifest["resumed_from"], first.manifest["run_id"]);
}
