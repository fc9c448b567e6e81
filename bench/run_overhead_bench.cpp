// What a governed run costs over the bare minimum of work a run must do.
//  - NoopRun: `cp-host run` in-process on contracts/examples/noop.json (tool runner `true`, the low pack's
//  four
//    gates, a git worktree made and removed, a sealed bundle with fsync'd events, reports and manifest).
//  - NoopRunCli: the same through the cp-host binary (adds process start and plugin loading).
//  - NoopRunUnsandboxed: NoopRun with the sandbox off (Landlock and cgroups made to look absent, the pack
//    allowing an unsandboxed run): NoopRun / NoopRunUnsandboxed is what the sandbox costs a run.
//  - SpawnTrue / SpawnTrueSandboxed: the process service starting `true` without and with a prepared run
//    sandbox (Landlock ruleset + seccomp filter applied in the child): the cost per process.
//  - SpawnTrueTwoFsyncs: posix_spawn of `true`, wait, and two fsync'd file writes: the floor.
//  - the /threads:2 variants: two of the same at once (each thread its own root), as a serve with
//    concurrency 2 runs them; the time is per run, wall clock.
// Medians over repetitions are what to compare; bench/run_overhead.sh prints the ratio.
#include "os/process.hpp"
#include "os/sandbox.hpp"
#include "run/engine.hpp"

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

extern char** environ;
namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir;
  Scratch() {
    char tmpl[] = "/tmp/cp-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    fs::copy(fs::path(CP_SOURCE_DIR) / "packs", dir / "packs", fs::copy_options::recursive);
    fs::copy(fs::path(CP_SOURCE_DIR) / "policies", dir / "policies", fs::copy_options::recursive);
    fs::copy(fs::path(CP_SOURCE_DIR) / "examples/sample-repo", dir / "repo", fs::copy_options::recursive);
    std::string cmd =
        "cd '" + (dir / "repo").string() +
        "' && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@localhost "
        "commit -q -m init";
    if (std::system(cmd.c_str()) != 0) std::abort();
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// The no-op contract run in process, over and over in one root; `sandboxed` false makes Landlock and
// cgroups look absent and lets the low pack run unsandboxed.
void noop_runs(benchmark::State& state, bool sandboxed) {
  Scratch s;
  if (!sandboxed) {
    std::string cmd =
        "python3 -c \"import json,sys; p=json.load(open(sys.argv[1])); "
        "p['sandbox']={'on_unsupported':'run_unsandboxed'}; json.dump(p,open(sys.argv[1],'w'))\" " +
        (s.dir / "packs/low.json").string();
    if (std::system(cmd.c_str()) != 0) std::abort();
    ::setenv("CP_SANDBOX_SIMULATE_NO_LANDLOCK", "1", 1);
    ::setenv("CP_SANDBOX_SIMULATE_NO_CGROUP", "1", 1);
  }
  cp::run::RunRequest req;
  req.contract_path = fs::path(CP_SOURCE_DIR) / "contracts/examples/noop.json";
  req.repo = s.dir / "repo";
  req.root = s.dir;
  req.plugins_dir = CP_PLUGIN_DIR;
  for (auto _ : state) {
    auto out = cp::run::run_contract(req);
    if (out.verdict != "success")
      state.SkipWithError(("noop run did not succeed: " + out.reason + out.error).c_str());
  }
  ::unsetenv("CP_SANDBOX_SIMULATE_NO_LANDLOCK");
  ::unsetenv("CP_SANDBOX_SIMULATE_NO_CGROUP");
}
void NoopRun(benchmark::State& state) {
  noop_runs(state, true);
}
void NoopRunUnsandboxed(benchmark::State& state) {
  noop_runs(state, false);
}

void spawn_true(benchmark::State& state, bool sandboxed) {
  Scratch s;
  std::shared_ptr<const cp::os::PreparedSandbox> sb;
  if (sandboxed) {
    cp::os::SandboxPolicy p;
    p.write_paths = {s.dir / "repo"};
    p.hidden_paths = {s.dir};
    std::string error;
    sb = cp::os::PreparedSandbox::prepare(p, error);
    if (!sb) return state.SkipWithError(("no sandbox: " + error).c_str());
  }
  cp::os::ProcessSpec spec;
  spec.argv = {"true"};
  spec.sandbox = sb;
  for (auto _ : state)
    if (!cp::os::run_process(spec).ok()) state.SkipWithError("true failed");
}
void SpawnTrue(benchmark::State& state) {
  spawn_true(state, false);
}
void SpawnTrueSandboxed(benchmark::State& state) {
  spawn_true(state, true);
}

void NoopRunCli(benchmark::State& state) {
  Scratch s;
  std::string cmd = std::string(CP_HOST_BIN) + " --plugins " + CP_PLUGIN_DIR + " --root '" + s.dir.string() +
                    "' run --quiet --repo '" + (s.dir / "repo").string() + "' " + CP_SOURCE_DIR +
                    "/contracts/examples/noop.json > /dev/null";
  for (auto _ : state)
    if (std::system(cmd.c_str()) != 0) state.SkipWithError("cp-host run failed");
}

void fsync_write(const fs::path& p) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (::write(fd, "{}\n", 3) != 3) std::abort();
  ::fsync(fd);
  ::close(fd);
}

void SpawnTrueTwoFsyncs(benchmark::State& state) {
  Scratch s;
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ) != 0) std::abort();
    int status;
    ::waitpid(pid, &status, 0);
    fsync_write(s.dir / "a.json");
    fsync_write(s.dir / "b.json");
  }
}

}  // namespace

BENCHMARK(NoopRun)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(NoopRunUnsandboxed)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(SpawnTrue)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(50)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(SpawnTrueSandboxed)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(50)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(NoopRunCli)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(SpawnTrueTwoFsyncs)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(20)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(NoopRunCli)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5)
    ->Repetitions(9)
    ->Threads(2)
    ->ReportAggregatesOnly(true);
BENCHMARK(SpawnTrueTwoFsyncs)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(20)
    ->Repetitions(9)
    ->Threads(2)
    ->ReportAggregatesOnly(true);
BENCHMARK_MAIN();
