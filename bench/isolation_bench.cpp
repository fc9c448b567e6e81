// The price of isolation: a gate call served by cp-plugin-worker (framed JSON over a socketpair) next to
// the same call in process, and the time to start a worker (fork/exec, handshake, dlopen, create).
// The plugin is the loader test fixture, whose evaluate does almost nothing, so only the overhead shows.
#include "plugin/host_services.hpp"
#include "plugin/instance.hpp"
#include "plugin/isolated_plugin.hpp"
#include "plugin/registry.hpp"

#include <benchmark/benchmark.h>

namespace {

const cp::plugin::PluginInfo& fixture() {
  static cp::plugin::Registry reg = [] {
    cp::plugin::Registry r;
    r.load_file(std::string(CP_LOADER_FIXTURE_DIR) + "/a_good.so");
    return r;
  }();
  return *reg.find("fixture_good");
}

const std::string kInput = R"({"run_id":"bench","changes":[],"commands":[]})";

void InProcessGateCall(benchmark::State& state) {
  std::string err;
  auto inst = cp::plugin::Instance::create(fixture(), err);
  cp::plugin::CallContext ctx("fixture_good");
  for (auto _ : state)
    if (!inst->evaluate(ctx, kInput).ok()) state.SkipWithError("call failed");
}

void IsolatedGateCall(benchmark::State& state) {
  cp::plugin::IsolatedPlugin worker(fixture(), {});
  cp::plugin::CallContext ctx("fixture_good");
  if (!worker.evaluate(ctx, kInput, std::chrono::seconds(10)).ok())
    return state.SkipWithError("worker failed");
  for (auto _ : state)
    if (!worker.evaluate(ctx, kInput, std::chrono::seconds(10)).ok()) state.SkipWithError("call failed");
}

void WorkerStartAndFirstCall(benchmark::State& state) {
  cp::plugin::CallContext ctx("fixture_good");
  double start_us = 0;
  for (auto _ : state) {
    cp::plugin::IsolatedPlugin worker(fixture(), {});
    if (!worker.evaluate(ctx, kInput, std::chrono::seconds(10)).ok()) state.SkipWithError("worker failed");
    start_us += static_cast<double>(worker.last_start_time().count());
  }
  state.counters["start_us"] = benchmark::Counter(start_us, benchmark::Counter::kAvgIterations);
}

}  // namespace

BENCHMARK(InProcessGateCall)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
BENCHMARK(IsolatedGateCall)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
BENCHMARK(WorkerStartAndFirstCall)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(20)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
BENCHMARK_MAIN();
