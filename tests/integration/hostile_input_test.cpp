// Oversized and hostile inputs through every command that reads a user's file: a 1 GB (sparse) contract,
// chain or events log, a 10 MB single JSON line, 100,000 levels of nesting. Each is refused (or handled) with
// a clear message and the exit code documented for it, nothing is written, and the process's peak memory
// stays far below the input's size (measured with /usr/bin/time).
#include "integration/run_project.hpp"

#include <cstdlib>

using namespace cp::test;

namespace {

struct Measured {
  Ran ran;
  long max_rss_kb = -1;
};

// Runs cp-host under /usr/bin/time and reads its peak resident set size.
Measured measured(const RunProject& p, const std::vector<std::string>& args,
                  const std::vector<std::string>& env = {}) {
  std::string cmd = "/usr/bin/time -f 'maxrss_kb=%M' '" + std::string(CP_HOST_BIN) + "' --plugins '" +
                    p.plugins.string() + "' --root '" + p.dir.path().string() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  Measured m;
  m.ran = run_env({"/bin/sh", "-c", cmd}, env, p.dir.path());
  auto at = m.ran.err.rfind("maxrss_kb=");
  if (at != std::string::npos) m.max_rss_kb = std::atol(m.ran.err.c_str() + at + 10);
  return m;
}

// A file of `size` bytes that starts with `head` and is otherwise a hole: costs no disk.
fs::path sparse(const fs::path& file, const std::string& head, std::uintmax_t size) {
  write_file(file, head);
  fs::resize_file(file, size);
  return file;
}

constexpr std::uintmax_t kGiB = 1ull << 30;
constexpr long kRssBoundKb = 256 * 1024;  // a quarter of the 1 GB input; the sanitizer build fits too

bool nothing_ran(const RunProject& p) {
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  if (!fs::exists(runs)) return true;
  for (const auto& e : fs::directory_iterator(runs))
    if (e.path().filename().string()[0] != '.') return false;
  return true;
}

}  // namespace

TEST(HostileInput, AOneGigabyteContractIsRefusedUnreadEverywhere) {
  RunProject p;
  fs::path big = sparse(p.dir / "contracts/big.json", "{\"task_id\": \"", kGiB);

  Measured v = measured(p, {"validate", big.string()});
  EXPECT_EQ(v.ran.exit_code, 1) << v.ran.out << v.ran.err;
  EXPECT_NE(v.ran.out.find("refused unread"), std::string::npos) << v.ran.out;
  EXPECT_GT(v.max_rss_kb, 0);
  EXPECT_LT(v.max_rss_kb, kRssBoundKb);

  // run and intake preview: 2 (invalid input, nothing written); queue submit: 1 (checked, invalid).
  using Case = std::pair<std::vector<std::string>, int>;
  for (const Case& c : std::vector<Case>{{{"run", big.string(), "--repo", p.repo.string()}, 2},
                                         {{"intake", "preview", big.string()}, 2},
                                         {{"queue", "submit", big.string(), "--repo", p.repo.string()}, 1}}) {
    const auto& args = c.first;
    Measured m = measured(p, args);
    EXPECT_EQ(m.ran.exit_code, c.second) << args[0] << ": " << m.ran.out << m.ran.err;
    EXPECT_NE((m.ran.out + m.ran.err).find("refused unread"), std::string::npos)
        << args[0] << ": " << m.ran.err;
    EXPECT_LT(m.max_rss_kb, kRssBoundKb) << args[0];
  }
  EXPECT_TRUE(nothing_ran(p));
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/queue.jsonl") &&
               read_file(p.dir / ".runtime-cache/cortexpilot/queue.jsonl").find("enqueued") !=
                   std::string::npos);
}

TEST(HostileInput, AOneGigabyteChainOrChainStepIsRefusedUnread) {
  RunProject p;
  fs::path big = sparse(p.dir / "chain.json", "{\"chain_id\": \"", kGiB);
  Measured m = measured(p, {"chain", "run", big.string(), "--repo", p.repo.string()});
  EXPECT_EQ(m.ran.exit_code, 2) << m.ran.err;
  EXPECT_NE(m.ran.err.find("refused unread"), std::string::npos) << m.ran.err;
  EXPECT_LT(m.max_rss_kb, kRssBoundKb);

  // A sound chain whose step names a 1 GB contract.
  sparse(p.dir / "step.json", "{", kGiB);
  json chain{
      {"schema_version", 1},
      {"chain_id", "c"},
      {"lifecycle", {{"require_pm_loop", false}}},
      {"steps", {{{"step_id", "s"}, {"kind", "task"}, {"role", "WORKER"}, {"contract", "step.json"}}}}};
  write_file(p.dir / "small-chain.json", chain.dump());
  Measured s =
      measured(p, {"chain", "run", (p.dir / "small-chain.json").string(), "--repo", p.repo.string()});
  EXPECT_EQ(s.ran.exit_code, 2) << s.ran.err;
  EXPECT_NE(s.ran.err.find("refused unread"), std::string::npos) << s.ran.err;
  EXPECT_LT(s.max_rss_kb, kRssBoundKb);
  EXPECT_TRUE(nothing_ran(p));
}

TEST(HostileInput, DeepNestingIsRefusedUnparsed) {
  RunProject p;
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  write_file(p.dir / "deep-chain.json", "{\"chain_id\":\"c\",\"steps\":" + deep + "}");
  Ran c = host({"--root", p.dir.path().string(), "chain", "run", (p.dir / "deep-chain.json").string(),
                "--repo", p.repo.string()});
  EXPECT_EQ(c.exit_code, 2) << c.err;
  EXPECT_NE(c.err.find("refused unparsed"), std::string::npos) << c.err;
  write_file(p.dir / "contracts/deep.json", "{\"task_id\":" + deep + "}");
  Ran r = host({"--root", p.dir.path().string(), "run", (p.dir / "contracts/deep.json").string(), "--repo",
                p.repo.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE((r.out + r.err).find("refused unparsed"), std::string::npos) << r.err;
  EXPECT_TRUE(nothing_ran(p));
}

TEST(HostileInput, ATenMegabyteJsonLineIsHandledInBoundedMemory) {
  RunProject p;
  // One line, 10 MB: a contract whose spec is huge is still checked (it is under the 16 MiB limit).
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["inputs"]["spec"] = std::string(10u << 20, 'x');
  write_file(p.dir / "contracts/wide.json", c.dump());
  Measured v = measured(p, {"validate", (p.dir / "contracts/wide.json").string()});
  EXPECT_EQ(v.ran.exit_code, 0) << v.ran.out << v.ran.err;
  EXPECT_LT(v.max_rss_kb, kRssBoundKb);

  // An agent that prints a 10 MB line among its events: the run goes on, the line is counted, memory holds.
  std::string path =
      std::string(CP_SOURCE_DIR) + "/tests/fakes:" + (std::getenv("PATH") ? std::getenv("PATH") : "");
  std::string stream =
      "{\"type\":\"thread.started\",\"thread_id\":\"t-1\"}\n{\"type\":\"turn.started\"}\n" +
      json{{"type", "item.completed"},
           {"item", {{"id", "i1"}, {"type", "agent_message"}, {"text", std::string(10u << 20, 'y')}}}}
          .dump() +
      "\n{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":10,\"cached_input_tokens\":0,"
      "\"output_tokens\":5}}\n";
  write_file(p.dir / "stream.jsonl", stream);
  json agent = p.contract({});
  agent["runtime_options"].erase("commands");
  agent["runtime_options"]["runner"] = "codex";
  agent["acceptance_tests"] = json::array();
  agent["required_outputs"] = json::array();
  write_file(p.dir / "contracts/agent.json", agent.dump());
  Measured r = measured(
      p, {"run", (p.dir / "contracts/agent.json").string(), "--repo", p.repo.string(), "--json", "-q"},
      {"PATH=" + path, "FAKE_CODEX_SCENARIO=replay",
       "FAKE_CODEX_REPLAY=" + (p.dir / "stream.jsonl").string()});
  json out = json::parse(r.ran.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.ran.out << r.ran.err;
  EXPECT_EQ(out["stage"], "sealed");
  json task = json::parse(read_file(fs::path(out["bundle"].get<std::string>()) / "reports/task_result.json"));
  EXPECT_EQ(task["status"], "completed") << task.dump().substr(0, 500);
  EXPECT_EQ(task["stream"]["lines"], 4);
  EXPECT_EQ(task["stream"]["malformed_lines"], 0);
  EXPECT_LE(task["last_message"].get<std::string>().size(), 4000u);  // kept short in the result
  EXPECT_LT(r.max_rss_kb, kRssBoundKb);

  // A 10 MB line in a run's events.jsonl: verified (and refused as a broken chain) in bounded memory.
  std::string run_id = out["run_id"];
  fs::path events = fs::path(out["bundle"].get<std::string>()) / "events.jsonl";
  {
    std::ofstream app(events, std::ios::app);
    app << "{\"seq\":999,\"pad\":\"" << std::string(10u << 20, 'z') << "\"}\n";
  }
  Measured ver = measured(p, {"runs", "verify", run_id});
  EXPECT_EQ(ver.ran.exit_code, 1) << ver.ran.out << ver.ran.err;
  EXPECT_LT(ver.max_rss_kb, kRssBoundKb);
}
