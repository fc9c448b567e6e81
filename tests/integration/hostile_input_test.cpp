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
  // Under AddressSanitizer, freed blocks wait in a quarantine (256 MiB by default) and stay resident; a small
  // one keeps the measure about cp-host's live memory. No effect on the normal build.
  std::vector<std::string> e = env;
  const char* asan = std::getenv("ASAN_OPTIONS");
  e.push_back(std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") + "quarantine_size_mb=4");
  m.ran = run_env({"/bin/sh", "-c", cmd}, e, p.dir.path());
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
// Memory is judged against the same command on a small input of the same kind, so that the bound holds in
// the sanitizer build too (whose baseline is several hundred MiB): a refused 1 GB file may add at most this.
constexpr long kRefusedGrowthKb = 64 * 1024;
// A 10 MB line that is read may cost a few copies of itself (text, parsed value, the raw artifact buffer),
// never more than this.
constexpr long kLineGrowthKb = 80 * 1024;

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
  fs::path small = sparse(p.dir / "contracts/small.json", "{\"task_id\": \"", 64);

  Measured v = measured(p, {"validate", big.string()});
  Measured v0 = measured(p, {"validate", small.string()});
  EXPECT_EQ(v.ran.exit_code, 1) << v.ran.out << v.ran.err;
  EXPECT_NE(v.ran.out.find("refused unread"), std::string::npos) << v.ran.out;
  EXPECT_GT(v.max_rss_kb, 0);
  EXPECT_LT(v.max_rss_kb - v0.max_rss_kb, kRefusedGrowthKb);

  // run, intake preview and queue submit alike: 1 (checked, invalid; nothing written).
  using Case = std::pair<std::vector<std::string>, int>;
  for (const Case& c : std::vector<Case>{{{"run", big.string(), "--repo", p.repo.string()}, 1},
                                         {{"intake", "preview", big.string()}, 1},
                                         {{"queue", "submit", big.string(), "--repo", p.repo.string()}, 1}}) {
    const auto& args = c.first;
    Measured m = measured(p, args);
    auto small_args = args;
    small_args[args[0] == "intake" ? 2 : 1] = small.string();
    Measured m0 = measured(p, small_args);
    EXPECT_EQ(m.ran.exit_code, c.second) << args[0] << ": " << m.ran.out << m.ran.err;
    EXPECT_NE((m.ran.out + m.ran.err).find("refused unread"), std::string::npos)
        << args[0] << ": " << m.ran.err;
    EXPECT_LT(m.max_rss_kb - m0.max_rss_kb, kRefusedGrowthKb) << args[0];
  }
  EXPECT_TRUE(nothing_ran(p));
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/queue.jsonl") &&
               read_file(p.dir / ".runtime-cache/cortexpilot/queue.jsonl").find("enqueued") !=
                   std::string::npos);
}

TEST(HostileInput, AOneGigabyteChainOrChainStepIsRefusedUnread) {
  RunProject p;
  fs::path big = sparse(p.dir / "chain.json", "{\"chain_id\": \"", kGiB);
  sparse(p.dir / "small-broken.json", "{\"chain_id\": \"", 64);
  Measured m = measured(p, {"chain", "run", big.string(), "--repo", p.repo.string()});
  Measured m0 =
      measured(p, {"chain", "run", (p.dir / "small-broken.json").string(), "--repo", p.repo.string()});
  EXPECT_EQ(m.ran.exit_code, 2) << m.ran.err;
  EXPECT_NE(m.ran.err.find("refused unread"), std::string::npos) << m.ran.err;
  EXPECT_LT(m.max_rss_kb - m0.max_rss_kb, kRefusedGrowthKb);

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
  EXPECT_EQ(s.ran.exit_code, 1) << s.ran.err;
  EXPECT_NE(s.ran.err.find("refused unread"), std::string::npos) << s.ran.err;
  EXPECT_LT(s.max_rss_kb - m0.max_rss_kb, kRefusedGrowthKb);
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
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE((r.out + r.err).find("refused unparsed"), std::string::npos) << r.err;
  EXPECT_TRUE(nothing_ran(p));
}

TEST(HostileInput, ATenMegabyteJsonLineIsHandledInBoundedMemory) {
  RunProject p;
  // One line, 10 MB: a contract whose spec is huge is still checked (it is under the 16 MiB limit).
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["inputs"]["spec"] = std::string(10u << 20, 'x');
  write_file(p.dir / "contracts/wide.json", c.dump());
  c["inputs"]["spec"] = "short";
  write_file(p.dir / "contracts/narrow.json", c.dump());
  Measured v = measured(p, {"validate", (p.dir / "contracts/wide.json").string()});
  Measured v0 = measured(p, {"validate", (p.dir / "contracts/narrow.json").string()});
  EXPECT_EQ(v.ran.exit_code, 0) << v.ran.out << v.ran.err;
  EXPECT_LT(v.max_rss_kb - v0.max_rss_kb, kLineGrowthKb)
      << "validate: " << v.max_rss_kb << " vs " << v0.max_rss_kb;

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
  // The streams live outside the runtime root: the agent runs in the run sandbox, which hides the root.
  TempDir streams;
  write_file(streams / "stream.jsonl", stream);
  std::string small_stream = stream;
  small_stream.replace(small_stream.find(std::string(10u << 20, 'y')), 10u << 20, "short");
  write_file(streams / "small-stream.jsonl", small_stream);
  json agent = p.contract({});
  agent["runtime_options"].erase("commands");
  agent["runtime_options"]["runner"] = "codex";
  agent["acceptance_tests"] = json::array();
  agent["required_outputs"] = json::array();
  write_file(p.dir / "contracts/agent.json", agent.dump());
  auto agent_run = [&](const char* stream_file) {
    return measured(
        p, {"run", (p.dir / "contracts/agent.json").string(), "--repo", p.repo.string(), "--json", "-q"},
        {"PATH=" + path, "FAKE_CODEX_SCENARIO=replay",
         "FAKE_CODEX_REPLAY=" + (streams / stream_file).string()});
  };
  Measured r0 = agent_run("small-stream.jsonl");
  Measured r = agent_run("stream.jsonl");
  json out = json::parse(r.ran.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.ran.out << r.ran.err;
  EXPECT_EQ(out["stage"], "sealed");
  json task = json::parse(read_file(fs::path(out["bundle"].get<std::string>()) / "reports/task_result.json"));
  EXPECT_EQ(task["status"], "completed") << task.dump().substr(0, 500);
  EXPECT_EQ(task["stream"]["lines"], 4);
  EXPECT_EQ(task["stream"]["malformed_lines"], 0);
  EXPECT_LE(task["last_message"].get<std::string>().size(), 4000u);  // kept short in the result
  EXPECT_LT(r.max_rss_kb - r0.max_rss_kb, kLineGrowthKb)
      << "run: " << r.max_rss_kb << " vs " << r0.max_rss_kb;

  // A 10 MB line in a run's events.jsonl: verified (and refused as a broken chain) in bounded memory.
  std::string run_id = out["run_id"];
  fs::path events = fs::path(out["bundle"].get<std::string>()) / "events.jsonl";
  Measured ver0 = measured(p, {"runs", "verify", run_id});
  EXPECT_EQ(ver0.ran.exit_code, 0) << ver0.ran.out << ver0.ran.err;
  {
    std::ofstream app(events, std::ios::app);
    app << "{\"seq\":999,\"pad\":\"" << std::string(10u << 20, 'z') << "\"}\n";
  }
  Measured ver = measured(p, {"runs", "verify", run_id});
  EXPECT_EQ(ver.ran.exit_code, 1) << ver.ran.out << ver.ran.err;
  EXPECT_LT(ver.max_rss_kb - ver0.max_rss_kb, kLineGrowthKb)
      << "verify: " << ver.max_rss_kb << " vs " << ver0.max_rss_kb;
}
