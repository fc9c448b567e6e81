// What a governed run costs over the bare minimum of work a run must do.
//  - NoopRun: `cp-host run` in-process on contracts/examples/noop.json (tool runner `true`, the low pack's
//  four
//    gates, a git worktree made and removed, a sealed bundle with fsync'd events, reports and manifest).
//  - NoopRunCli: the same through the cp-host binary (adds process start and plugin loading).
//  - SpawnTrueTwoFsyncs: posix_spawn of `true`, wait, and two fsync'd file writes: the floor.
//  - the /threads:2 variants: two of the same at once (each thread its own root), as a serve with
//    concurrency 2 runs them; the time is per run, wall clock.
// Medians over repetitions are what to compare; bench/run_overhead.sh prints the ratio.
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

void NoopRun(benchmark::State& state) {
  Scratch s;
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
