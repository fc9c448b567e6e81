// The `agents` runner and the `provider_capability` probe against a fake OpenAI-compatible provider
// (tests/fakes/provider.py, a real HTTP server on 127.0.0.1): classification of each provider behaviour,
// the tool loop end to end through `cp-host run`, and the fail-closed refusal of tool work on a chat-only
// provider, and file tools that stay inside the worktree whatever symlinks the run's own processes plant.
#include "integration/fake_provider.hpp"
#include "integration/run_project.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <map>
#include <thread>

using namespace cp::test;

extern char** environ;

namespace {

json provider_config(const std::string& base_url, const std::string& model) {
  return {{"base_url", base_url},
          {"model", model},
          {"api_key_env", "CP_TEST_PROVIDER_KEY"},
          {"request_timeout_sec", 10}};
}

void configure(const RunProject& p, const std::string& base_url, const std::string& model,
               int max_steps = 30) {
  json runner = provider_config(base_url, model);
  runner["retries"] = 1;
  runner["max_steps"] = max_steps;
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

// Adds `rel` to the test repository, committed, so the run's worktree has it.
void commit(const RunProject& p, const std::string& rel, const std::string& text) {
  cp::test::write_file(p.repo / rel, text);
  Ran r =
      cp::test::sh("git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m " + rel, p.repo);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

constexpr const char* kOutsideRefusal = "path leaves the worktree or crosses a symbolic link";

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
  // The assigned role's prompt (policies/role_config.json, compiled into the contract) comes first.
  // The last request is the runner's (the probe's come first); every turn resends the conversation.
  std::istringstream sent(fake.requests());
  std::string line, last;
  while (std::getline(sent, line))
    if (!line.empty()) last = line;
  json request = json::parse(last, nullptr, false);
  ASSERT_TRUE(request.is_object()) << last;
  std::string user;
  for (const auto& m : request["messages"])
    if (m.value("role", "") == "user") user = m.value("content", "");
  EXPECT_EQ(user.rfind(cp::test::read_file(p.dir / "policies/roles/worker.md"), 0), 0u) << user;
  EXPECT_NE(user.find("Your task:"), std::string::npos) << user;
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
    EXPECT_EQ(r.ran.exit_code, 4) << r.ran.out << r.ran.err;
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

// The file tools run inside cp-host, with its rights and outside the run's sandbox. A symlink the run's own
// process plants in the worktree (pointing at a folder or a file outside) must never carry a write_file or a
// read_file out: each is refused with a tool error, nothing appears or changes outside, the outside
// content never reaches the provider, and the run goes on to make the real fix through ordinary paths
// (nested folders included).
TEST(AgentsRunner, FileToolsNeverFollowASymlinkThatTheRunPlanted) {
  FakeProvider fake;
  RunProject p;
  fs::path canary = p.dir / "canary";
  fs::create_directories(canary);
  const std::string secret = "CANARY-SECRET-7f3a9c";
  cp::test::write_file(canary / "secret.txt", secret + "\n");
  commit(p, "scripts/link_out.sh",
         "ln -s '" + canary.string() + "' src/link\nln -s '" + (canary / "secret.txt").string() +
             "' src/secret-link\n");
  configure(p, fake.base_url(), "symlink-model");
  auto r = p.run(agents_contract(p), kKey);
  ASSERT_TRUE(r.manifest.is_object()) << r.ran.out << r.ran.err;

  EXPECT_FALSE(fs::exists(canary / "pwned.txt"));
  EXPECT_FALSE(fs::exists(canary / "new"));
  EXPECT_EQ(cp::test::read_file(canary / "secret.txt"), secret + "\n");
  std::string sent = fake.requests();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.find(secret), std::string::npos) << "the outside secret reached the provider";

  auto results = fake.tool_results();
  EXPECT_EQ(results["call_0"].rfind("exit 0", 0), 0u) << results["call_0"];  // the links were made
  for (const char* id : {"call_1", "call_2", "call_3", "call_4", "call_5"})
    EXPECT_NE(results[id].find(kOutsideRefusal), std::string::npos) << id << ": " << results[id];
  EXPECT_EQ(results["call_6"], "wrote src/greeting.sh");
  EXPECT_EQ(results["call_7"], "wrote src/notes/deep/ok.txt");
  EXPECT_EQ(results["call_8"], "ok\n");
  // The loop went on to the end; the planted links themselves are what diff_scope denies the run for.
  EXPECT_EQ(r.read("reports/task_result.json")["status"], "completed");
  EXPECT_EQ(r.manifest["verdict"], "denied") << r.manifest["reason"];
  json diags = gate_report(r, "diff_scope")["diagnostics"];
  ASSERT_EQ(diags.size(), 2u) << diags.dump();
  EXPECT_EQ(diags[0]["path"], "src/link");
  EXPECT_EQ(diags[1]["path"], "src/secret-link");
  expect_bundle_valid(p, r);
}

// The race form of the same attack: a background process the run started keeps exchanging a real folder
// with a symlink to a folder outside (renameat2 RENAME_EXCHANGE) while the model writes and reads through
// it. Whatever the interleaving, nothing is written outside and the outside file never reaches the model.
// The swapper stops by itself after 60 s should the run not end it first.
TEST(AgentsRunner, FileToolsStayInsideWhileTheRunSwapsAFolderForASymlink) {
  FakeProvider fake;
  RunProject p;
  fs::path outside = p.dir / "outside";
  fs::create_directories(outside);
  const std::string secret = "SWAP-SECRET-51be02";
  cp::test::write_file(outside / "x", secret + "\n");
  commit(p, "scripts/swap.py",
         "import ctypes, os, sys, time\n"
         "if os.fork():\n"
         "    sys.exit(0)\n"
         "os.setsid()\n"
         "null = os.open(os.devnull, os.O_RDWR)\n"
         "for fd in (0, 1, 2):\n"
         "    os.dup2(null, fd)\n"
         "libc = ctypes.CDLL(None, use_errno=True)\n"
         "AT_FDCWD, RENAME_EXCHANGE = -100, 2\n"
         "end = time.monotonic() + 60\n"
         "while time.monotonic() < end:\n"
         "    libc.renameat2(AT_FDCWD, b'src/d', AT_FDCWD, b'src/d-link', RENAME_EXCHANGE)\n");
  commit(p, "scripts/swap.sh",
         "mkdir -p src/d && ln -s '" + outside.string() + "' src/d-link && python3 scripts/swap.py\n");
  configure(p, fake.base_url(), "swap-model", 50);
  auto r = p.run(agents_contract(p), kKey);
  ASSERT_TRUE(r.manifest.is_object()) << r.ran.out << r.ran.err;

  EXPECT_EQ(cp::test::read_file(outside / "x"), secret + "\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(outside), fs::directory_iterator()), 1);
  EXPECT_EQ(fake.requests().find(secret), std::string::npos) << "the outside file reached the provider";
  auto results = fake.tool_results();
  EXPECT_EQ(results["call_0"].rfind("exit 0", 0), 0u) << results["call_0"];
  int inside = 0, refused = 0;
  for (int i = 1; i <= 80; ++i) {
    const std::string& a = results["call_" + std::to_string(i)];
    if (a == "wrote src/d/x" || a == "pwned\n" || a == "error: cannot read src/d/x")
      ++inside;
    else if (a.find(kOutsideRefusal) != std::string::npos)
      ++refused;
    else
      ADD_FAILURE() << "call_" << i << ": " << a;
  }
  EXPECT_EQ(inside + refused, 80);
  EXPECT_GT(refused, 0) << "the swapper never won a race; the test proved nothing";
}
