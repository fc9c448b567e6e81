// The `agents` runner and the `provider_capability` probe against a fake OpenAI-compatible provider
// (tests/fakes/provider.py, a real HTTP server on 127.0.0.1): classification of each provider behaviour,
// the tool loop end to end through `cp-host run`, and the fail-closed refusal of tool work on a chat-only
// provider.
#include "integration/run_project.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

using namespace cp::test;

extern char** environ;

namespace {

// The fake provider, started for one test and stopped with it.
class FakeProvider {
 public:
  FakeProvider() {
    std::string script = std::string(CP_SOURCE_DIR) + "/tests/fakes/provider.py";
    std::string port_file = (dir_ / "port").string();
    std::vector<std::string> args{"python3", script, port_file};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawnp(&pid_, "python3", nullptr, nullptr, argv.data(), environ), 0);
    for (int i = 0; i < 100 && !fs::exists(port_file); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    port_ = fs::exists(port_file) ? cp::test::read_file(port_file) : "0";
  }
  ~FakeProvider() {
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
  }
  std::string base_url() const { return "http://127.0.0.1:" + port_ + "/v1"; }

 private:
  cp::test::TempDir dir_;
  pid_t pid_ = -1;
  std::string port_;
};

json provider_config(const std::string& base_url, const std::string& model) {
  return {{"base_url", base_url},
          {"model", model},
          {"api_key_env", "CP_TEST_PROVIDER_KEY"},
          {"request_timeout_sec", 10}};
}

void configure(const RunProject& p, const std::string& base_url, const std::string& model) {
  json runner = provider_config(base_url, model);
  runner["retries"] = 1;
  json policy{{"policy", "plugins"},
              {"plugins",
               {{"agents", {{"config", runner}}},
                {"provider_capability", {{"config", provider_config(base_url, model)}}}}}};
  cp::test::write_file(p.dir / "policies/plugins.json", policy.dump(2));
}

const std::vector<std::string> kKey{"CP_TEST_PROVIDER_KEY=test-key"};

json probe(const RunProject& p, const std::vector<std::string>& env = kKey) {
  Ran r = cp::test::run_env({CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", p.dir.path().string(),
                             "probe", "provider_capability", "--json"},
                            env, p.dir.path());
  json doc = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(doc.is_object()) << r.out << r.err;
  return doc.is_object() ? doc["provider_capability"] : json();
}

json agents_contract(const RunProject& p) {
  json c = p.contract({});
  c["runtime_options"].erase("commands");
  c["runtime_options"]["runner"] = "agents";
  return c;
}

}  // namespace

TEST(ProviderProbe, ClassifiesEachProviderBehaviourByARealRequest) {
  FakeProvider fake;
  RunProject p;
  struct Case {
    std::string model, provider_status, status;
    bool tools;
  };
  for (const Case& c : std::vector<Case>{{"tool-model", "tool_capable", "ok", true},
                                         {"chat-model", "chat_only", "ok", false},
                                         {"notools-model", "chat_only", "ok", false},
                                         {"rate-model", "error", "error", false},
                                         {"error-model", "error", "error", false}}) {
    configure(p, fake.base_url(), c.model);
    json r = probe(p);
    EXPECT_EQ(r["status"], c.status) << c.model << ": " << r.dump();
    EXPECT_EQ(r["capabilities"]["provider_status"], c.provider_status) << c.model;
    EXPECT_EQ(r["capabilities"]["tool_execution"], c.tools) << c.model;
    EXPECT_EQ(r["capabilities"]["compat_api_mode"], "chat_completions");
  }
  configure(p, fake.base_url(), "tool-model");
  json unauth = probe(p, {"CP_TEST_PROVIDER_KEY=wrong"});
  EXPECT_EQ(unauth["capabilities"]["provider_status"], "unauthorised") << unauth.dump();
  configure(p, "http://127.0.0.1:1/v1", "tool-model");
  json gone = probe(p);
  EXPECT_EQ(gone["capabilities"]["provider_status"], "unreachable") << gone.dump();
}

TEST(AgentsRunner, ToolLoopFixesTheRepoThroughAllowedToolsOnly) {
  FakeProvider fake;
  RunProject p;
  configure(p, fake.base_url(), "tool-model");
  auto r = p.run(agents_contract(p), kKey);
  ASSERT_EQ(r.ran.exit_code, 0) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "success");
  json caps = r.manifest["runtime_capability_summary"];
  EXPECT_EQ(caps["provider_status"], "tool_capable");
  EXPECT_EQ(caps["tool_execution"], true);
  EXPECT_EQ(caps["lane"], "openai_compatible");
  EXPECT_EQ(r.manifest["usage"]["input_tokens"], 400);
  EXPECT_EQ(r.manifest["usage"]["turns"], 4);
  auto types = r.event_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "FILE_CHANGED"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "COMMAND_EXECUTED"), types.end());
  expect_bundle_valid(p, r);
}

TEST(AgentsRunner, ChatOnlyProviderIsRefusedBeforeTheRunWhenTheContractNeedsTools) {
  FakeProvider fake;
  RunProject p;
  configure(p, fake.base_url(), "chat-model");
  auto r = p.run(agents_contract(p), kKey);
  EXPECT_EQ(r.ran.exit_code, 8) << r.ran.out;
  EXPECT_EQ(r.manifest["verdict"], "error");
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("chat_only"), std::string::npos)
      << r.manifest["reason"];
  auto types = r.event_types();
  EXPECT_EQ(std::find(types.begin(), types.end(), "RUNNER_STARTED"), types.end());  // nothing ran
  EXPECT_EQ(std::find(types.begin(), types.end(), "WORKSPACE_CREATED"), types.end());
  // intake preview says the same without writing a bundle.
  cp::test::write_file(p.dir / "contracts/preview.json", agents_contract(p).dump());
  Ran pre = cp::test::run_env({CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", p.dir.path().string(),
                               "intake", "preview", (p.dir / "contracts/preview.json").string(), "--json"},
                              kKey, p.dir.path());
  EXPECT_EQ(pre.exit_code, 1) << pre.out << pre.err;
  json doc = json::parse(pre.out);
  EXPECT_FALSE(doc["would_run"].get<bool>());
  EXPECT_EQ(doc["runtime_capability_summary"]["provider_status"], "chat_only");
  EXPECT_EQ(doc["runtime_capability_summary"]["tool_execution"], false);
}

TEST(AgentsRunner, ProviderErrorsBudgetsAndEscapesAreNeverAPass) {
  FakeProvider fake;
  {
    RunProject p;  // 429 on every call: the probe fails closed before the run
    configure(p, fake.base_url(), "rate-model");
    auto r = p.run(agents_contract(p), kKey);
    EXPECT_EQ(r.ran.exit_code, 8) << r.ran.out;
    EXPECT_NE(r.manifest["reason"].get<std::string>().find("429"), std::string::npos) << r.manifest["reason"];
  }
  {
    RunProject p;  // a model that never stops calling tools breaks max_turns
    configure(p, fake.base_url(), "loop-model");
    json c = agents_contract(p);
    c["budgets"]["max_turns"] = 2;
    auto r = p.run(c, kKey);
    EXPECT_EQ(r.ran.exit_code, 4) << r.ran.out;
    EXPECT_EQ(r.manifest["reason"], "budget_exceeded: max_turns 3 > 2");
  }
  {
    RunProject p;  // ../ is refused by the runner; a write outside allowed_paths is denied by diff_scope
    configure(p, fake.base_url(), "outside-model");
    auto r = p.run(agents_contract(p), kKey);
    EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out;
    EXPECT_EQ(gate_report(r, "diff_scope")["diagnostics"][0]["path"], "notes.txt");
    EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/worktrees/escape.txt"));
  }
}

TEST(AgentsRunner, RunCommandDeclinesEscapesForbiddenActionsAndHugeArgumentsBeforeStarting) {
  FakeProvider fake;
  RunProject p;
  configure(p, fake.base_url(), "escape-model");
  auto r = p.run(agents_contract(p), kKey);
  EXPECT_EQ(r.ran.exit_code, 0) << r.ran.out << r.ran.err;  // the model went on and made the real fix
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/canary.txt"));
  std::vector<std::string> reasons;
  for (const auto& e : r.events())
    if (e["type"] == "COMMAND_DECLINED") reasons.push_back(e["payload"].value("reason", ""));
  ASSERT_EQ(reasons.size(), 4u);
  EXPECT_NE(reasons[0].find("'..' component"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[1].find("flag or command 'w'"), std::string::npos) << reasons[1];
  EXPECT_NE(reasons[2].find("forbidden action 'git-push'"), std::string::npos) << reasons[2];
  EXPECT_NE(reasons[3].find("longer than"), std::string::npos) << reasons[3];
  expect_bundle_valid(p, r);
}
