// Chaos: 210 queued runs (CP_CHAOS_RUNS; no-op tool runs and fake-codex runs) through `cp-host serve`, which
// is killed with SIGKILL at random moments (seeded: CP_CHAOS_SEED, printed) and restarted, until the queue
// drains. Then: every item ended in exactly one terminal state, queue.jsonl replays cleanly and fits its
// schema, every bundle parses, validates and its event chain verifies, no live marker or tombstone is left,
// and no process of any run is alive. Bounded: the whole test gives up after CP_CHAOS_BUDGET_SEC (default
// 600).
#include "integration/serve_fixture.hpp"
#include "store/event_log.hpp"

#include <gtest/gtest.h>

#include <random>

namespace cp::test {
namespace {

TEST(Chaos, KillNineAtRandomMomentsLosesNothing) {
  unsigned seed = 20261125;
  if (const char* s = std::getenv("CP_CHAOS_SEED")) seed = static_cast<unsigned>(std::stoul(s));
  int budget = 600;
  if (const char* b = std::getenv("CP_CHAOS_BUDGET_SEC")) budget = std::stoi(b);
  std::mt19937 rng(seed);
  std::cerr << "chaos seed " << seed << " (CP_CHAOS_SEED to reproduce)\n";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(budget);

  RunProject p;
  std::string op = add_token(p, "chaos", "operator");
  std::vector<std::string> env{"PATH=" + std::string(CP_SOURCE_DIR) +
                                   "/tests/fakes:" + (std::getenv("PATH") ? std::getenv("PATH") : ""),
                               "FAKE_CODEX_SCENARIO=success"};
  std::vector<std::string> args{
      "--concurrency", "2",           "--tokens", (p.dir / "tokens.json").string(), "--repo",
      p.repo.string(), "--open-reads"};
  auto serve = std::make_unique<ServeProcess>(p, args, env);
  ASSERT_NE(serve->port(), 0) << serve->output();

  // 180 no-op tool runs and 30 fake-codex runs (of 210), interleaved; each may retry twice after an
  // interruption.
  json noop = json::parse(read_file(fs::path(CP_SOURCE_DIR) / "contracts/examples/noop.json"));
  json agent = p.contract({});
  agent["runtime_options"].erase("commands");
  agent["runtime_options"]["runner"] = "codex";
  agent["assigned_agent"]["agent_id"] = "codex-worker";
  // CP_CHAOS_RUNS shrinks the load where each run costs more (the sanitizer build): at least 14.
  int total = 210;
  if (const char* n = std::getenv("CP_CHAOS_RUNS")) total = std::max(14, std::stoi(n));
  for (int i = 0; i < total; ++i) {
    json c = i % 7 == 3 ? agent : noop;
    c["task_id"] = (i % 7 == 3 ? "agent-" : "noop-") + std::to_string(i);
    c["timeout_retry"] = {{"timeout_sec", 300}, {"max_retries", 2}, {"backoff_sec", 0}};
    auto r = http(serve->port(), "POST", "/api/runs", bearer(op), json{{"contract", c}}.dump());
    ASSERT_EQ(r.status, 202) << r.body;
  }

  auto queue_now = [&]() {
    Ran r = host({"--root", p.dir.path().string(), "queue", "list", "--json"});
    return json::parse(r.out, nullptr, false);
  };
  auto ended = [&](const json& q) {
    if (!q.is_object()) return false;
    int done = q["counts"].value("done", 0) + q["counts"].value("cancelled", 0);
    return done == total;
  };
  int kills = 0;
  std::uniform_int_distribution<int> pause_ms(200, 2500);
  json q;
  while (!ended(q = queue_now()) && std::chrono::steady_clock::now() < deadline) {
    if (kills < 12) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
      serve->kill9();
      ++kills;
      serve = std::make_unique<ServeProcess>(p, args, env);
      ASSERT_NE(serve->port(), 0) << serve->output();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  ASSERT_TRUE(ended(q)) << "the queue did not drain within the budget; seed " << seed << "\n" << q.dump(1);
  EXPECT_EQ(serve->stop(), 0);
  std::cerr << "chaos: " << kills << " kill -9s\n";

  // Exactly one terminal state per item, attempts numbered 1..n, every attempt ended, run ids unique.
  EXPECT_TRUE(q["problems"].empty()) << q["problems"].dump(2);
  std::set<std::string> run_ids;
  std::map<std::string, json> attempt_of;
  std::map<std::string, int> outcomes;
  int interrupted = 0;
  for (const auto& it : q["items"]) {
    SCOPED_TRACE(it.dump());
    EXPECT_EQ(it["state"], "done");
    ++outcomes[it.value("status", "?")];
    for (size_t a = 0; a < it["attempts"].size(); ++a) {
      const json& at = it["attempts"][a];
      EXPECT_EQ(at["attempt"], a + 1);
      EXPECT_TRUE(at.contains("finished_at"));
      if (at.value("reason", "").find("host_interrupted") != std::string::npos) ++interrupted;
      ASSERT_TRUE(at.contains("run_id"));
      EXPECT_TRUE(run_ids.insert(at["run_id"].get<std::string>()).second) << "run id used twice";
      attempt_of[at["run_id"]] = at;
    }
    EXPECT_LE(it["attempts"].size(), 3u);
  }
  std::map<std::string, int> reasons;
  for (const auto& [id, at] : attempt_of)
    if (at.value("status", "") != "success") ++reasons[at.value("reason", "").substr(0, 160)];
  for (const auto& [r, n] : reasons) {
    std::cerr << "chaos: " << n << " x " << r << "\n";
    EXPECT_NE(r.find("host_interrupted"), std::string::npos)
        << "an attempt failed for another reason than a kill";
  }
  std::cerr << "chaos: outcomes";
  for (const auto& [k, v] : outcomes) std::cerr << " " << k << "=" << v;
  std::cerr << ", " << interrupted << " interrupted attempts, " << run_ids.size() << " runs\n";
  EXPECT_EQ(outcomes["success"] + outcomes["error"], total)
      << "no-op and fake-agent runs succeed unless interrupted";
  EXPECT_GT(kills, 0);

  // queue.jsonl: every line fits the schema, and a replay agrees (the CLI replayed it above).
  std::ifstream ql(p.dir / ".runtime-cache/cortexpilot/queue.jsonl");
  std::string line;
  size_t lines = 0;
  while (std::getline(ql, line)) {
    ++lines;
    expect_valid("queue_item", json::parse(line), "queue line " + std::to_string(lines));
  }
  EXPECT_GT(lines, static_cast<size_t>(total * 4));

  // Every bundle: its manifest parses and validates, it is sealed, its events validate and chain.
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  size_t bundles = 0;
  for (const auto& e : fs::directory_iterator(runs)) {
    std::string id = e.path().filename().string();
    if (id[0] == '.') continue;
    ++bundles;
    SCOPED_TRACE(id);
    json man = json::parse(read_file(e.path() / "manifest.json"), nullptr, false);
    ASSERT_TRUE(man.is_object());
    expect_valid("run_manifest", man, id);
    EXPECT_EQ(man["status"], "sealed");
    auto check = store::verify_event_log(e.path() / "events.jsonl");
    EXPECT_TRUE(check.ok) << check.reason;
    EXPECT_EQ(man["events"]["count"], check.events);
    EXPECT_TRUE(run_ids.count(id)) << "a bundle no attempt names";
  }
  // And each one is what its host sealed, wherever the kills fell (mid-seal included).
  Ran all = host({"--root", p.dir.path().string(), "runs", "verify", "--all"});
  EXPECT_EQ(all.exit_code, 0) << all.out << all.err;
  EXPECT_NE(all.out.find(" 0 tampered"), std::string::npos) << all.out;
  // An attempt without a bundle is one whose child was killed before it made one: it ended interrupted.
  size_t without = 0;
  for (const auto& id : run_ids)
    if (!fs::exists(runs / id)) {
      ++without;
      EXPECT_EQ(attempt_of[id]["status"], "error") << attempt_of[id].dump();
      EXPECT_NE(attempt_of[id].value("reason", "").find("host_interrupted"), std::string::npos)
          << attempt_of[id].dump();
    }
  EXPECT_EQ(bundles + without, run_ids.size());
  std::cerr << "chaos: " << bundles << " bundles, " << without << " attempts killed before their bundle\n";
  // Live markers are left only by attempts killed before their bundle existed (recovery drops those once
  // they are a minute old, since another process could be creating a bundle right then); never for a bundle.
  for (const auto& e : fs::directory_iterator(runs / ".live")) {
    std::string id = e.path().filename().string();
    EXPECT_FALSE(fs::exists(runs / id)) << "a sealed bundle still marked live: " << id;
    EXPECT_TRUE(attempt_of.count(id)) << id;
  }
  EXPECT_TRUE(processes_of_runs(run_ids).empty());
}

}  // namespace
}  // namespace cp::test
