// Third-party gates that misbehave (tests/plugins/misbehaving/): segfault, abort, endless loop, 200 MiB of
// output, invalid JSON, an exception through the wrapper, a leak until the resource limit. Run isolated
// (the default for third-party libraries) every one is verdict error with the reason in its report,
// cp-host stays up, and the next run works; the ones that do not crash are also contained in process.
#include "integration/run_project.hpp"

using namespace cp::test;

namespace {

// A project whose plugin folder holds the shipped plugins plus one misbehaving gate, and a pack naming it.
struct BadGateProject : RunProject {
  explicit BadGateProject(const std::string& mode, const std::string& isolation = "") {
    plugins = dir / "plugins";
    fs::create_directories(plugins);
    for (const auto& e : fs::directory_iterator(CP_PLUGIN_DIR))
      fs::create_symlink(e.path(), plugins / e.path().filename());
    fs::create_symlink(fs::path(CP_MISBEHAVING_DIR) / ("bad_" + mode + ".so"),
                       plugins / ("bad_" + mode + ".so"));
    json pack{{"pack_id", "third-party"},
              {"governance_level", "low"},
              {"gates",
               json::array({{{"plugin", "diff_scope"}}, {{"plugin", "bad_" + mode}, {"timeout_sec", 3}}})}};
    cp::test::write_file(dir / "packs/third-party.json", pack.dump(2));
    json policy{{"policy", "plugins"}, {"plugins", json::object()}};
    if (!isolation.empty()) policy["plugins"]["bad_" + mode] = {{"isolation", isolation}};
    if (mode == "leak") policy["plugins"]["bad_" + mode]["limits"] = {{"address_space_mb", 512}};
    cp::test::write_file(dir / "policies/plugins.json", policy.dump(2));
  }
  json contract_for_pack() const {
    json c = contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
    c["runtime_options"]["pack"] = "third-party";
    return c;
  }
};

// Sanitizer builds cannot cap address space; they cap RSS instead (ignored by normal builds). The cap
// leaves room for the host's own sanitizer-built image and shadow (about 800 MiB while an in-process gate
// floods it with events), so only a gate that runs away reaches it.
const std::vector<std::string> kEnv{"ASAN_OPTIONS=detect_leaks=0:hard_rss_limit_mb=1280"};

void expect_contained(const std::string& mode, const std::string& isolation, const std::string& why) {
  SCOPED_TRACE(mode + " " + (isolation.empty() ? "default" : isolation));
  BadGateProject p(mode, isolation);
  auto r = p.run(p.contract_for_pack(), kEnv);
  ASSERT_EQ(r.ran.exit_code, 8) << r.ran.out << r.ran.err;  // sealed error: the host survived to seal it
  EXPECT_EQ(r.manifest["verdict"], "error");
  json rep = gate_report(r, "bad_" + mode);
  EXPECT_EQ(rep["verdict"], "error");
  EXPECT_EQ(rep["isolation"], isolation.empty() ? "isolated" : isolation);
  // `why` may list alternatives separated by '|' (how a limit bites differs between normal and sanitizer
  // builds).
  std::string summary = rep["summary"], rest = why;
  bool found = false;
  for (size_t bar; !found && !rest.empty(); rest = bar == std::string::npos ? "" : rest.substr(bar + 1)) {
    bar = rest.find('|');
    found = summary.find(rest.substr(0, bar)) != std::string::npos;
  }
  EXPECT_TRUE(found) << summary;
  expect_valid("gate_verdict", rep, "report");
  // The next run in the same project works.
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  auto next = p.run(c);
  EXPECT_EQ(next.ran.exit_code, 0) << next.ran.out;
}

}  // namespace

TEST(Isolation, SegfaultingGateIsAnErrorWithTheSignal) {
  expect_contained("segfault", "", "signal 11 (SIGSEGV)|store to null pointer");  // UBSan stops it first
}
TEST(Isolation, AbortingGateIsAnErrorWithTheSignal) {
  expect_contained("abort", "", "signal 6 (SIGABRT)");
}
TEST(Isolation, EndlessGateIsKilledAtItsDeadline) {
  expect_contained("loop", "", "did not answer within 3000 ms");
}
TEST(Isolation, FloodingGateIsRefused) {
  expect_contained("flood", "", "exceeded");
}
TEST(Isolation, InvalidJsonVerdictIsAnError) {
  expect_contained("invalid_json", "", "invalid JSON");
}
TEST(Isolation, ExceptionThroughTheWrapperIsAnError) {
  expect_contained("throw", "", "gate blew up");
}
TEST(Isolation, LeakingGateHitsItsLimitAndIsAnError) {
  expect_contained("leak", "", "out of memory|isolated plugin 'bad_leak'");
}

TEST(Isolation, NonCrashingMisbehaviourIsContainedInProcessToo) {
  expect_contained("invalid_json", "in_process", "invalid JSON");
  expect_contained("throw", "in_process", "gate blew up");
  expect_contained("flood", "in_process", "exceeded");
  // An endless loop cannot be killed in process: the gate is abandoned at its deadline (its events refused
  // from then on), the verdict is error, and cp-host still seals the run and exits.
  expect_contained("loop", "in_process", "gate did not finish within 3 s");
}

TEST(Isolation, ThirdPartyPluginsAreIsolatedByDefaultAndFirstPartyInProcess) {
  BadGateProject p("invalid_json");
  auto run = p.run(p.contract_for_pack(), kEnv);
  EXPECT_EQ(gate_report(run, "diff_scope")["isolation"], "in_process");
  EXPECT_EQ(gate_report(run, "bad_invalid_json")["isolation"], "isolated");
}

TEST(Isolation, RunnerCanRunIsolatedWithEventsDeadlinesAndGroupKill) {
  RunProject p;
  cp::test::write_file(p.dir / "policies/plugins.json",
                       R"({"policy":"plugins","plugins":{"tool":{"isolation":"isolated"}}})");
  auto ok = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(ok.ran.exit_code, 0) << ok.ran.out << ok.ran.err;
  auto types = ok.event_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "COMMAND_EXECUTED"),
            types.end());  // forwarded by the worker
  expect_bundle_valid(p, ok);
  // A hung command in an isolated runner: the wall time cancels it through the worker, and nothing survives.
  json c = p.contract({"sh scripts/hang.sh"});
  c["budgets"]["wall_time_sec"] = 1;
  auto hung = p.run(c);
  EXPECT_EQ(hung.ran.exit_code, 6) << hung.ran.out;
  pid_t pgid = std::stoi(cp::test::read_file(hang_pid_file(p.dir.path())));
  for (int i = 0; i < 50 && group_alive(pgid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(group_alive(pgid));
}
