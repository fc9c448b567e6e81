// Agents and roles end to end: a real `cp-host serve` on 127.0.0.1 running real runs (the fake codex in
// tests/fakes records the prompt it got), the role config's routes and CLI twins, allowed_runners enforced
// by validate, submit and run, and prompt_refs that try to leave policies/.
#include "core/runtime_paths.hpp"
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace cp::test {
namespace {

std::vector<std::string> fake_path() {
  return {"PATH=" + std::string(CP_SOURCE_DIR) +
          "/tests/fakes:" + (std::getenv("PATH") ? std::getenv("PATH") : "")};
}

// A codex contract of the sample project; `scenario` is what the fake codex plays (read from the prompt).
json codex_contract(const RunProject& p, const std::string& task_id, const std::string& scenario) {
  json c = p.contract({});
  c["task_id"] = task_id;
  c["runtime_options"].erase("commands");
  c["runtime_options"]["runner"] = "codex";
  c["assigned_agent"]["agent_id"] = "codex-worker";
  c["inputs"]["spec"] = c["inputs"]["spec"].get<std::string>() + "\nfake-codex-scenario: " + scenario;
  c["timeout_retry"] = {{"timeout_sec", 300}, {"max_retries", 0}, {"backoff_sec", 0}};
  return c;
}

struct Served {
  RunProject p;
  std::string admin, op, viewer;
  std::unique_ptr<ServeProcess> serve;
  explicit Served(std::vector<std::string> env = {}) {
    admin = add_token(p, "root-admin", "admin");
    op = add_token(p, "ops", "operator");
    viewer = add_token(p, "watcher", "viewer");
    for (const auto& e : fake_path()) env.push_back(e);
    serve = std::make_unique<ServeProcess>(
        p,
        std::vector<std::string>{"--concurrency", "2", "--tokens", (p.dir / "tokens.json").string(), "--repo",
                                 p.repo.string()},
        env);
  }
  uint16_t port() const { return serve->port(); }
  HttpResponse get(const std::string& path, const std::string& token) const {
    return http(port(), "GET", path, bearer(token));
  }
  HttpResponse post(const std::string& path, const std::string& token, const json& body) const {
    return http(port(), "POST", path, bearer(token), body.dump());
  }
  // Queues the contract and returns the queue item id.
  std::string submit(const json& contract) const {
    auto r = post("/api/runs", op, {{"contract", contract}});
    EXPECT_EQ(r.status, 202) << r.body;
    return json::parse(r.body).value("item_id", "");
  }
  json item(const std::string& id) const { return json::parse(get("/api/queue/" + id, viewer).body); }
  // The run id of the item's first attempt, once it has one.
  std::string run_of(const std::string& item_id) const {
    std::string run;
    wait_until(
        [&] {
          json it = item(item_id);
          if (it.contains("attempts") && !it["attempts"].empty() && it["attempts"][0].contains("run_id"))
            run = it["attempts"][0]["run_id"];
          return !run.empty();
        },
        std::chrono::seconds(60));
    return run;
  }
  bool ended(const std::string& item_id) const {
    return wait_until(
        [&] {
          std::string st = item(item_id).value("state", "");
          return st == "done" || st == "cancelled";
        },
        std::chrono::seconds(120));
  }
  fs::path bundle(const std::string& run_id) const { return core::bundle_dir(p.dir.path(), run_id); }
};

// The run's entry in an agents status answer; null when it is not there, or the answer is not one (a poll
// that got no answer: a slow sanitizer build may still be starting serve or busy).
json status_run(const json& status, const std::string& run_id) {
  if (!status.is_object() || !status.contains("runs") || !status["runs"].is_array()) return nullptr;
  for (const auto& r : status["runs"])
    if (r["run_id"] == run_id) return r;
  return nullptr;
}

std::vector<json> host_events(const RunProject& p) {
  std::vector<json> out;
  std::ifstream in(core::host_events_log(p.dir.path()));
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

std::string sha256_of_file(const fs::path& f) {
  Ran r = sh("sha256sum '" + f.string() + "' | cut -c1-64", fs::temp_directory_path());
  std::string s = r.out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

const char* kNewPrompt = "NEW WORKER PROMPT v2: you are a careful worker; say so in your summary.\n";

TEST(RoleConfig, ApplyChangesTheNextRunsPromptAndLeavesARunningRunAlone) {
  Served s({"FAKE_CODEX_RECORD_PROMPT=1"});
  ASSERT_NE(s.port(), 0) << s.serve->output();
  const std::string old_prompt = read_file(s.p.dir / "policies/roles/worker.md");

  // Run A: its agent fixes the greeting, reports the file change, then hangs in a command.
  std::string item_a = s.submit(codex_contract(s.p, "hangs", "edit_then_hang"));
  std::string run_a = s.run_of(item_a);
  ASSERT_FALSE(run_a.empty());
  json seen;
  ASSERT_TRUE(wait_until(
      [&] {
        seen = status_run(json::parse(s.get("/api/agents/status", s.viewer).body, nullptr, false), run_a);
        return seen.is_object() && seen["files_changed"]["count"] == 1;
      },
      std::chrono::seconds(60)))
      << seen.dump(2);
  fs::path recorded_a = s.bundle(run_a) / "artifacts/scratch/codex_prompt.txt";
  ASSERT_TRUE(wait_until([&] { return fs::exists(recorded_a); }, std::chrono::seconds(30)));
  EXPECT_EQ(read_file(recorded_a).rfind(old_prompt, 0), 0u) << read_file(recorded_a);

  // The new prompt for WORKER, applied by an admin while run A is live.
  json cfg = json::parse(read_file(s.p.dir / "policies/role_config.json"));
  json worker = cfg["roles"]["WORKER"];
  auto applied = s.post("/api/agents/roles/WORKER/config/apply", s.admin,
                        {{"config", worker}, {"prompt", kNewPrompt}, {"reason", "sharper worker prompt"}});
  ASSERT_EQ(applied.status, 200) << applied.body;
  json a = json::parse(applied.body);
  EXPECT_EQ(a["outcome"], "applied");
  EXPECT_EQ(a["prompt"]["written"], true);
  EXPECT_EQ(read_file(s.p.dir / "policies/roles/worker.md"), kNewPrompt);
  const std::string new_sha = a["prompt"]["proposed_sha256"];
  EXPECT_EQ(new_sha, sha256_of_file(s.p.dir / "policies/roles/worker.md"));

  // Run A is untouched: still live, its compiled contract holds the old prompt.
  json contract_a = json::parse(read_file(s.bundle(run_a) / "contract.json"));
  EXPECT_EQ(contract_a["role_prompt"]["text"], old_prompt);
  EXPECT_NE(contract_a["role_prompt"]["sha256"], new_sha);
  EXPECT_TRUE(
      status_run(json::parse(s.get("/api/agents/status", s.viewer).body, nullptr, false), run_a).is_object());
  auto cancel = s.post("/api/runs/" + run_a + "/cancel", s.op, json::object());
  ASSERT_EQ(cancel.status, 202) << cancel.body;  // requested: serve stops the run
  ASSERT_TRUE(s.ended(item_a));

  // Run B, queued after the apply: its agent gets the new prompt in front of the task.
  std::string item_b = s.submit(codex_contract(s.p, "after-apply", "success"));
  ASSERT_TRUE(s.ended(item_b));
  std::string run_b = s.item(item_b)["attempts"][0]["run_id"];
  EXPECT_EQ(s.item(item_b)["status"], "success") << s.item(item_b).dump(2);
  std::string prompt_b = read_file(s.bundle(run_b) / "artifacts/scratch/codex_prompt.txt");
  EXPECT_EQ(prompt_b.rfind(kNewPrompt, 0), 0u) << prompt_b;
  EXPECT_NE(prompt_b.find("Your task:"), std::string::npos);
  EXPECT_NE(prompt_b.find("make it say 'Hello'"), std::string::npos) << "the task follows the role's prompt";
  json contract_b = json::parse(read_file(s.bundle(run_b) / "contract.json"));
  EXPECT_EQ(contract_b["role_prompt"]["sha256"], new_sha);
  EXPECT_EQ(contract_b["role_prompt"]["prompt_ref"], "policies/roles/worker.md");
  json manifest_b = json::parse(read_file(s.bundle(run_b) / "manifest.json"));
  EXPECT_EQ(manifest_b["role_binding_summary"]["assigned"]["prompt_sha256"], new_sha);
  EXPECT_EQ(manifest_b["role_binding_summary"]["authority"], "enforced");
  bool runner_started_names_it = false;
  std::ifstream ev(s.bundle(run_b) / "events.jsonl");
  for (std::string line; std::getline(ev, line);) {
    json e = json::parse(line);
    if (e["type"] == "RUNNER_STARTED")
      runner_started_names_it = e["payload"].value("role_prompt_sha256", "") == new_sha;
  }
  EXPECT_TRUE(runner_started_names_it);

  // Run A, sealed now, still shows the prompt it ran with.
  EXPECT_EQ(read_file(recorded_a).rfind(old_prompt, 0), 0u);
  EXPECT_EQ(read_file(recorded_a).find(kNewPrompt), std::string::npos);

  // The apply is audited: a host event naming the admin's token, and a governance log line.
  auto events = host_events(s.p);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "ROLE_CONFIG_APPLIED");
  EXPECT_EQ(events[0]["run_id"], "host");
  EXPECT_EQ(events[0]["payload"]["role"], "WORKER");
  EXPECT_EQ(events[0]["payload"]["by"], "root-admin");
  EXPECT_EQ(events[0]["payload"]["prompt_sha256"], new_sha);
  EXPECT_EQ(events[0]["payload"]["reason"], "sharper worker prompt");
  expect_valid("event", events[0], "ROLE_CONFIG_APPLIED");
  std::string governance = read_file(core::logs_dir(s.p.dir.path()) / "governance/governance.jsonl");
  EXPECT_NE(governance.find("role config of WORKER applied by root-admin"), std::string::npos) << governance;
}

TEST(AgentsStatus, ShowsEachLiveRunWithRoleStageWorktreeAndFilesChanged) {
  Served s;
  ASSERT_NE(s.port(), 0) << s.serve->output();
  // A codex agent hanging in a command after changing a file, and a tool run hanging in its command.
  std::string item_agent = s.submit(codex_contract(s.p, "agent-hangs", "edit_then_hang"));
  json tool =
      queue_contract(s.p, "tool-hangs", {"sed -i s/Helo/Hello/ src/greeting.sh", "sh scripts/hang.sh"});
  tool["assigned_agent"] = {{"role", "TESTING"}, {"agent_id", "tester-1"}};
  // Its own paths: two runs that may touch the same paths never run at once (path locks).
  tool["allowed_paths"] = json::array({"scripts/"});
  std::string item_tool = s.submit(tool);
  std::string run_agent = s.run_of(item_agent), run_tool = s.run_of(item_tool);
  ASSERT_FALSE(run_agent.empty());
  ASSERT_FALSE(run_tool.empty());
  json status, agent, t;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = s.get("/api/agents/status", s.viewer);
        if (r.status != 200) return false;
        status = json::parse(r.body);
        agent = status_run(status, run_agent);
        t = status_run(status, run_tool);
        return agent.is_object() && agent["files_changed"]["count"] == 1 && t.is_object() &&
               t["stage"] == "runner" && !hang_pid_file(s.p.dir.path()).empty();
      },
      std::chrono::seconds(60)))
      << status.dump(2);
  EXPECT_EQ(agent["role"], "WORKER");
  EXPECT_EQ(agent["agent_id"], "codex-worker");
  EXPECT_EQ(agent["runner"], "codex");
  EXPECT_EQ(agent["stage"], "runner");
  EXPECT_EQ(agent["status"], "running");
  EXPECT_EQ(agent["files_changed"]["paths"], json::array({"src/greeting.sh"}));
  EXPECT_EQ(agent["last_event"]["type"], "FILE_CHANGED") << agent.dump(2);
  EXPECT_EQ(agent["worktree"], core::worktree_dir(s.p.dir.path(), run_agent).string());
  EXPECT_TRUE(fs::is_directory(agent["worktree"].get<std::string>()));
  EXPECT_EQ(agent["queue_item_id"], item_agent);
  EXPECT_EQ(t["role"], "TESTING");
  EXPECT_EQ(t["runner"], "tool");
  EXPECT_EQ(t["files_changed"]["count"], 0) << "the tool runner reports no FILE_CHANGED";
  // Read again: the events already read are not counted twice.
  json again = status_run(json::parse(s.get("/api/agents/status", s.viewer).body, nullptr, false), run_agent);
  EXPECT_EQ(again["files_changed"]["count"], 1);
  EXPECT_EQ(again["files_changed"]["events"], 1);
  // The CLI twin sees the same runs.
  Ran cli = host({"--root", s.p.dir.path().string(), "agents", "status", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  json from_cli = status_run(json::parse(cli.out), run_agent);
  ASSERT_TRUE(from_cli.is_object()) << cli.out;
  EXPECT_EQ(from_cli["files_changed"]["paths"], json::array({"src/greeting.sh"}));
  Ran text = host({"--root", s.p.dir.path().string(), "agents", "status"});
  EXPECT_NE(text.out.find(run_tool), std::string::npos) << text.out;
  // Anonymous callers get nothing.
  EXPECT_EQ(http(s.port(), "GET", "/api/agents/status").status, 401);

  for (const auto& id : {item_agent, item_tool}) {
    auto c = s.post("/api/runs/" + id + "/cancel", s.op, json::object());
    EXPECT_EQ(c.status, 202) << c.body;
  }
  ASSERT_TRUE(s.ended(item_agent) && s.ended(item_tool));
  json after = json::parse(s.get("/api/agents/status", s.viewer).body);
  EXPECT_TRUE(status_run(after, run_agent).is_null()) << "a sealed run is not live";
}

TEST(AgentsApi, ListsRunnersWithCapabilitiesAndTheRoleRegistry) {
  Served s;
  ASSERT_NE(s.port(), 0) << s.serve->output();
  auto r = s.get("/api/agents", s.viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  json o = json::parse(r.body);
  json codex;
  for (const auto& x : o["runners"])
    if (x["id"] == "codex") codex = x;
  ASSERT_TRUE(codex.is_object()) << r.body;
  EXPECT_NE(std::find(codex["capabilities"].begin(), codex["capabilities"].end(), "stream"),
            codex["capabilities"].end());
  EXPECT_NE(std::find(codex["roles"].begin(), codex["roles"].end(), "WORKER"), codex["roles"].end());
  for (const auto& x : o["runners"])
    if (x["id"] == "agents") {
      EXPECT_EQ(std::find(x["roles"].begin(), x["roles"].end(), "REVIEWER"), x["roles"].end())
          << "REVIEWER may not use agents";
    }
  json worker;
  for (const auto& x : o["roles"])
    if (x["role"] == "WORKER") worker = x;
  ASSERT_TRUE(worker.is_object());
  EXPECT_EQ(worker["prompt"]["prompt_ref"], "policies/roles/worker.md");
  EXPECT_EQ(worker["prompt"]["sha256"], sha256_of_file(s.p.dir / "policies/roles/worker.md"));
  EXPECT_FALSE(worker["prompt"].contains("text")) << "the list carries no prompt text";
  EXPECT_EQ(o["role_config"]["valid"], true);
  EXPECT_EQ(o["role_config"]["sha256"], sha256_of_file(s.p.dir / "policies/role_config.json"));

  auto one = s.get("/api/agents/roles/WORKER/config", s.viewer);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(json::parse(one.body)["prompt"]["text"], read_file(s.p.dir / "policies/roles/worker.md"));
  EXPECT_EQ(s.get("/api/agents/roles/NOSUCH/config", s.viewer).status, 404);
  auto bad = s.get("/api/agents/roles/worker/config", s.viewer);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["error"]["details"]["parameter"], "role");
  EXPECT_EQ(http(s.port(), "GET", "/api/agents").status, 401);
  EXPECT_EQ(s.get("/api/agents?verbose=1", s.viewer).status, 400) << "an undeclared query parameter";

  Ran cli = host({"--root", s.p.dir.path().string(), "agents", "list", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(json::parse(cli.out)["roles"], o["roles"]);
}

TEST(RoleConfig, ApplyIsAdminOnlyAndABadConfigIs422WithItsPointer) {
  Served s;
  ASSERT_NE(s.port(), 0) << s.serve->output();
  const fs::path file = s.p.dir / "policies/role_config.json";
  const std::string before = read_file(file), prompt_before = read_file(s.p.dir / "policies/roles/worker.md");
  json worker = json::parse(before)["roles"]["WORKER"];
  const std::string apply = "/api/agents/roles/WORKER/config/apply",
                    preview = "/api/agents/roles/WORKER/config/preview";

  // Who may do what.
  json narrower = worker;
  narrower["allowed_runners"] = {"tool", "codex"};
  EXPECT_EQ(s.post(apply, s.op, {{"config", narrower}}).status, 403);
  EXPECT_EQ(s.post(preview, s.viewer, {{"config", narrower}}).status, 403);
  auto pv = s.post(preview, s.op, {{"config", narrower}});
  ASSERT_EQ(pv.status, 200) << pv.body;
  json diff = json::parse(pv.body);
  EXPECT_EQ(diff["outcome"], "previewed");
  EXPECT_FALSE(diff["changes"].empty());
  EXPECT_EQ(diff["current"], worker);
  EXPECT_EQ(diff["proposed"], narrower);

  // Bad configs: each refused with the pointer of what is wrong in the request.
  auto expect_422 = [&](const json& body, const std::string& pointer) {
    for (const std::string& route : {preview, apply}) {
      auto r = s.post(route, route == apply ? s.admin : s.op, body);
      ASSERT_EQ(r.status, 422) << route << " " << body.dump() << ": " << r.body;
      json e = json::parse(r.body)["error"];
      bool found = false;
      for (const auto& p : e["details"]["problems"]) found = found || p["pointer"] == pointer;
      EXPECT_TRUE(found) << "wanted " << pointer << " in " << e.dump(2);
    }
  };
  json c = worker;
  c["allowed_runners"] = {"tool", "nosuch"};
  expect_422({{"config", c}}, "/config/allowed_runners/1");
  c = worker;
  c["runtime"]["runner"] = "agents";
  c["allowed_runners"] = {"tool"};
  expect_422({{"config", c}}, "/config/runtime/runner");
  c = worker;
  c["allowed_runners"] = "tool";
  expect_422({{"config", c}}, "/config/allowed_runners");
  c = worker;
  c["prompt_ref"] = "policies/roles/missing.md";
  expect_422({{"config", c}}, "/config/prompt_ref");
  expect_422({{"config", worker}, {"prompt", std::string("bad\0text", 8)}}, "/prompt");
  expect_422({{"config", worker}, {"surprise", 1}}, "/surprise");
  expect_422({{"prompt", "x"}}, "/config");
  // A prompt text may only go to a file of this role's own directly under policies/roles/.
  c = worker;
  c["prompt_ref"] = "policies/role_config.json";
  expect_422({{"config", c}, {"prompt", "{}"}}, "/config/prompt_ref");
  c["prompt_ref"] = "policies/roles/reviewer.md";
  expect_422({{"config", c}, {"prompt", "mine now"}}, "/config/prompt_ref");
  // Too large a prompt.
  auto big = s.post(apply, s.admin, {{"config", worker}, {"prompt", std::string(64 * 1024 + 1, 'x')}});
  EXPECT_EQ(big.status, 413) << big.body;
  // Unknown role, malformed role, stale base.
  EXPECT_EQ(s.post(apply, s.admin, {{"config", worker}}).status, 200) << "same config: unchanged";
  EXPECT_EQ(s.post("/api/agents/roles/NOSUCH/config/apply", s.admin, {{"config", worker}}).status, 404);
  EXPECT_EQ(s.post("/api/agents/roles/wOrker/config/apply", s.admin, {{"config", worker}}).status, 400);
  EXPECT_EQ(http(s.port(), "POST", apply, bearer(s.admin), "{not json").status, 400);
  auto stale = s.post(apply, s.admin, {{"config", narrower}, {"base_sha256", std::string(64, '0')}});
  EXPECT_EQ(stale.status, 409) << stale.body;

  // Nothing refused changed anything: same file, same prompts, no event.
  EXPECT_EQ(read_file(file), before);
  EXPECT_EQ(read_file(s.p.dir / "policies/roles/worker.md"), prompt_before);
  EXPECT_FALSE(fs::exists(s.p.dir / "policies/roles/missing.md"));
  EXPECT_TRUE(host_events(s.p).empty());

  // With the right base it applies, and the next GET shows it.
  std::string sha =
      json::parse(s.get("/api/agents/roles/WORKER/config", s.viewer).body)["role_config"]["sha256"];
  auto ok = s.post(apply, s.admin, {{"config", narrower}, {"base_sha256", sha}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(s.get("/api/agents/roles/WORKER/config", s.viewer).body)["allowed_runners"],
            json::array({"tool", "codex"}));
  EXPECT_EQ(host_events(s.p).size(), 1u);
  // And it is enforced at once: WORKER may no longer use claude.
  json claude = queue_contract(s.p, "claude-worker", {});
  claude["runtime_options"].erase("commands");
  claude["runtime_options"]["runner"] = "claude";
  auto refused = s.post("/api/runs", s.op, {{"contract", claude}});
  EXPECT_EQ(refused.status, 422) << refused.body;
}

TEST(AllowedRunners, AContractWhoseRunnerItsRoleMayNotUseIsRefusedWithThePointer) {
  RunProject p;
  json c = p.contract({"true"});
  c["assigned_agent"] = {{"role", "REVIEWER"}, {"agent_id", "r1"}};
  c["runtime_options"].erase("commands");
  c["runtime_options"]["runner"] = "agents";
  write_file(p.dir / "contracts/reviewer-agents.json", c.dump(2));

  // validate
  Ran v = host({"--root", p.dir.path().string(), "validate", "--format", "json",
                (p.dir / "contracts/reviewer-agents.json").string()});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  json d = json::parse(v.out)["diagnostics"];
  ASSERT_EQ(d.size(), 1u) << v.out;
  EXPECT_EQ(d[0]["pointer"], "/runtime_options/runner");
  EXPECT_EQ(d[0]["rule"], "xref:allowed_runners");
  EXPECT_NE(d[0]["message"].get<std::string>().find("/assigned_agent/role"), std::string::npos);
  EXPECT_NE(d[0]["expected"].get<std::string>().find("one of: tool, codex, claude"), std::string::npos);

  // run: refused before anything is written.
  Ran r = cp::test::run(p.run_argv(c), p.dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("/runtime_options/runner"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(core::runs_dir(p.dir.path())) && !fs::is_empty(core::runs_dir(p.dir.path())));

  // POST /api/runs: 422 with the pointer under /contract; nothing queued.
  std::string op = add_token(p, "ops", "operator");
  ServeProcess serve(
      p, {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string(), "--open-reads"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  auto sub = http(serve.port(), "POST", "/api/runs", bearer(op), json{{"contract", c}}.dump());
  ASSERT_EQ(sub.status, 422) << sub.body;
  bool pointed = false;
  const json details = json::parse(sub.body)["error"]["details"];
  for (const auto& x : details)
    pointed = pointed || x.value("pointer", "") == "/contract/runtime_options/runner";
  EXPECT_TRUE(pointed) << sub.body;
  EXPECT_TRUE(json::parse(http(serve.port(), "GET", "/api/queue").body)["items"].empty());

  // The same contract assigned to a role that may use the runner passes.
  c["assigned_agent"]["role"] = "WORKER";
  write_file(p.dir / "contracts/reviewer-agents.json", c.dump(2));
  Ran ok = host(
      {"--root", p.dir.path().string(), "validate", (p.dir / "contracts/reviewer-agents.json").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

TEST(RoleConfig, PromptRefsLeavingPoliciesAreRefused) {
  RunProject p;
  write_file(p.dir / "outside/secret.md", "TOP SECRET outside policies\n");
  auto set_ref = [&](const std::string& ref) {
    json cfg = json::parse(read_file(p.dir / "policies/role_config.json"));
    cfg["roles"]["WORKER"]["prompt_ref"] = ref;
    write_file(p.dir / "policies/role_config.json", cfg.dump(2));
  };
  auto validate = [&]() {
    Ran v = host({"--root", p.dir.path().string(), "validate", "--format", "json",
                  (p.dir / "policies/role_config.json").string()});
    return std::make_pair(v.exit_code, json::parse(v.out, nullptr, false));
  };
  auto has = [](const json& out, const std::string& pointer, const std::string& rule) {
    for (const auto& d : out["diagnostics"])
      if (d["pointer"] == pointer && d["rule"] == rule) return true;
    return false;
  };
  for (const char* bad : {"policies/../outside/secret.md", "/etc/passwd", "outside/secret.md",
                          "policies/roles/../../outside/secret.md"}) {
    set_ref(bad);
    auto [code, out] = validate();
    EXPECT_EQ(code, 1) << bad;
    EXPECT_TRUE(has(out, "/roles/WORKER/prompt_ref", "pattern")) << bad << ": " << out.dump(2);
  }
  // A symlink inside policies/ to a file outside, and a folder of policies/ that is a link out.
  fs::create_symlink(p.dir / "outside/secret.md", p.dir / "policies/roles/linked.md");
  fs::create_directory_symlink(p.dir / "outside", p.dir / "policies/elsewhere");
  for (const char* bad : {"policies/roles/linked.md", "policies/elsewhere/secret.md"}) {
    set_ref(bad);
    auto [code, out] = validate();
    EXPECT_EQ(code, 1) << bad;
    EXPECT_TRUE(has(out, "/roles/WORKER/prompt_ref", "xref:prompt_ref")) << bad << ": " << out.dump(2);
    // A run of a WORKER contract is refused before it starts: the secret never reaches a contract.
    RunProject::Result r = p.run(p.contract({"true"}));
    EXPECT_EQ(r.ran.exit_code, 1) << r.ran.out << r.ran.err;
    EXPECT_NE(r.ran.err.find("/assigned_agent/role"), std::string::npos) << r.ran.err;
    EXPECT_TRUE(r.bundle.empty());
  }

  // Through the API an admin cannot write a prompt out of policies/roles/ either.
  set_ref("policies/roles/worker.md");
  fs::remove(p.dir / "policies/roles/linked.md");
  std::string admin = add_token(p, "root-admin", "admin");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()});
  ASSERT_NE(serve.port(), 0) << serve.output();
  json worker = json::parse(read_file(p.dir / "policies/role_config.json"))["roles"]["WORKER"];
  for (const char* bad : {"policies/elsewhere/evil.md", "policies/../outside/evil.md", "/tmp/evil.md",
                          "policies/roles/sub/evil.md"}) {
    json c = worker;
    c["prompt_ref"] = bad;
    auto r = http(serve.port(), "POST", "/api/agents/roles/WORKER/config/apply", bearer(admin),
                  json{{"config", c}, {"prompt", "evil"}}.dump());
    EXPECT_EQ(r.status, 422) << bad << ": " << r.body;
  }
  EXPECT_FALSE(fs::exists(p.dir / "outside/evil.md"));
  EXPECT_FALSE(fs::exists("/tmp/evil.md"));
  // policies/roles/ itself swapped for a link out: the write is refused, nothing lands outside.
  fs::rename(p.dir / "policies/roles", p.dir / "policies/roles.real");
  fs::create_directory_symlink(p.dir / "outside", p.dir / "policies/roles");
  json c = worker;
  c["prompt_ref"] = "policies/roles/evil.md";
  auto r = http(serve.port(), "POST", "/api/agents/roles/WORKER/config/apply", bearer(admin),
                json{{"config", c}, {"prompt", "evil"}}.dump());
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_FALSE(fs::exists(p.dir / "outside/evil.md"));
  EXPECT_EQ(json::parse(read_file(p.dir / "policies/role_config.json"))["roles"]["WORKER"], worker);
}

TEST(RolesCli, ShowPreviewAndApplyWithExitCodesAndAnAuditedChange) {
  RunProject p;
  const std::string root = p.dir.path().string();
  Ran show = host({"--root", root, "roles", "show", "WORKER", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  json v = json::parse(show.out);
  EXPECT_EQ(v["prompt"]["prompt_ref"], "policies/roles/worker.md");
  EXPECT_EQ(host({"--root", root, "roles", "show", "NOSUCH"}).exit_code, 1);
  Ran help = host({"roles", "apply", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--prompt-file"), std::string::npos);

  json cfg = v["config"];
  cfg["allowed_runners"] = {"tool", "nosuch"};
  write_file(p.dir / "bad.json", cfg.dump());
  Ran bad = host({"--root", root, "roles", "preview", "WORKER", "--config", (p.dir / "bad.json").string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("/config/allowed_runners/1"), std::string::npos) << bad.err;
  Ran missing =
      host({"--root", root, "roles", "preview", "WORKER", "--config", (p.dir / "none.json").string()});
  EXPECT_EQ(missing.exit_code, 2);

  cfg = v["config"];
  write_file(p.dir / "good.json", cfg.dump());
  write_file(p.dir / "prompt.md", "CLI prompt\n");
  Ran pv = host({"--root", root, "roles", "preview", "WORKER", "--config", (p.dir / "good.json").string(),
                 "--prompt-file", (p.dir / "prompt.md").string(), "--json"});
  ASSERT_EQ(pv.exit_code, 0) << pv.out << pv.err;
  EXPECT_EQ(json::parse(pv.out)["prompt"]["changed"], true);
  EXPECT_NE(read_file(p.dir / "policies/roles/worker.md"), "CLI prompt\n") << "preview writes nothing";
  Ran ap = host({"--root", root, "roles", "apply", "WORKER", "--config", (p.dir / "good.json").string(),
                 "--prompt-file", (p.dir / "prompt.md").string(), "--reason", "from the CLI", "--base-sha256",
                 v["role_config"]["sha256"]});
  ASSERT_EQ(ap.exit_code, 0) << ap.out << ap.err;
  EXPECT_EQ(read_file(p.dir / "policies/roles/worker.md"), "CLI prompt\n");
  auto events = host_events(p);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["payload"]["by_kind"], "os_user");
  EXPECT_EQ(events[0]["payload"]["reason"], "from the CLI");
  // The same base again is stale now.
  Ran stale = host({"--root", root, "roles", "apply", "WORKER", "--config", (p.dir / "good.json").string(),
                    "--base-sha256", v["role_config"]["sha256"]});
  EXPECT_EQ(stale.exit_code, 1) << stale.out << stale.err;
  // The applied file still passes validate.
  Ran val = host({"--root", root, "validate"}, p.dir.path());
  EXPECT_EQ(val.exit_code, 0) << val.out << val.err;
}

}  // namespace
}  // namespace cp::test
