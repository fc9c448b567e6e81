// How many events per second the codex runner's stream parser sustains, end to end through the C ABI: the
// fake codex replays a recorded stream of 50,000 command items, the runner parses each line and emits
// COMMAND_EXECUTED, and the host appends it to a hash-chained events.jsonl: unsynced (Durability::none),
// durable by group commit (what runs use: one fdatasync for the events written while the previous one ran,
// and the time includes the last sync, so every event is on disk when the clock stops), and durable one
// fdatasync per event (the floor group commit is measured against).
#include "plugin/host_services.hpp"
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"
#include "store/event_log.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Enough that the fake CLI's own start (python, about 0.1 s) does not decide the rate.
constexpr int kItems = 50000;

fs::path scratch() {
  char tmpl[] = "/tmp/cp-bench-codex-XXXXXX";
  fs::path d = ::mkdtemp(tmpl);
  fs::create_directories(d / "bundle/artifacts/codex");
  fs::create_directories(d / "ws");
  std::ofstream out(d / "stream.jsonl");
  out << R"({"type":"thread.started","thread_id":"0199f3a2-6b1e-7c40-9d2a-3f5e8a1b2c4d"})"
      << "\n"
      << R"({"type":"turn.started"})"
      << "\n";
  for (int i = 0; i < kItems; ++i)
    out << json{{"type", "item.completed"},
                {"item",
                 {{"id", "item_" + std::to_string(i)},
                  {"type", "command_execution"},
                  {"command", "bash -lc 'ctest --test-dir build -R case_" + std::to_string(i) + "'"},
                  {"aggregated_output", "100% tests passed, 0 tests failed out of 1\n"},
                  {"exit_code", 0},
                  {"status", "completed"}}}}
               .dump()
        << "\n";
  out << R"({"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":0,"output_tokens":100}})"
      << "\n";
  return d;
}

void Stream(benchmark::State& state, cp::store::EventLog::Durability durability) {
  static cp::plugin::Registry reg = [] {
    cp::plugin::Registry r;
    cp::plugin::PluginPolicy policy;
    policy.plugins["codex"].config_json =
        json{{"binary", std::string(CP_SOURCE_DIR) + "/tests/fakes/codex"}}.dump();
    policy.plugins["codex"].has_config = true;
    r.load_directory(CP_PLUGIN_DIR, policy);
    return r;
  }();
  const auto* info = reg.find("codex");
  if (!info) return state.SkipWithError("codex runner not loaded");
  fs::path d = scratch();
  ::setenv("FAKE_CODEX_SCENARIO", "replay", 1);
  ::setenv("FAKE_CODEX_REPLAY", (d / "stream.jsonl").c_str(), 1);
  std::string error;
  auto inst = cp::plugin::Instance::create(*info, error);
  if (!inst) return state.SkipWithError(error.c_str());
  json input{{"run_id", "bench"},
             {"contract", {{"inputs", {{"spec", "bench"}}}, {"runtime_options", {{"runner", "codex"}}}}},
             {"policies", json::object()},
             {"workspace", (d / "ws").string()},
             {"bundle_dir", (d / "bundle").string()}};
  int64_t events = 0;
  int round = 0;
  for (auto _ : state) {
    cp::store::EventLog log(d / ("events-" + std::to_string(round++) + ".jsonl"), "bench", durability);
    cp::plugin::CallContext ctx("codex");
    ctx.set_workspace((d / "ws").string());
    ctx.set_bundle_dir((d / "bundle").string());
    ctx.set_state_dir((d / "state").string());  // CODEX_HOME (cp_context.state_dir)
    ctx.set_event_sink([&](const std::string& type, const std::string& payload) {
      log.append(type, json::parse(payload));
      return true;
    });
    void* run = nullptr;
    if (!inst->start(ctx, input.dump(), run).ok()) return state.SkipWithError("start failed");
    cp::plugin::CallOutcome out;
    while ((out = inst->wait(run, 100)).status == CP_PENDING) {
    }
    inst->release(run);
    if (json::parse(out.output).value("status", "") != "completed")
      return state.SkipWithError(out.output.c_str());
    log.sync();  // every event on disk before the clock stops
    events += static_cast<int64_t>(log.count());
  }
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  std::error_code ec;
  fs::remove_all(d, ec);
}

void StreamUnsynced(benchmark::State& s) {
  Stream(s, cp::store::EventLog::Durability::none);
}
void StreamGroupCommit(benchmark::State& s) {
  Stream(s, cp::store::EventLog::Durability::group);
}
void StreamSyncEachEvent(benchmark::State& s) {
  Stream(s, cp::store::EventLog::Durability::every_event);
}

}  // namespace

BENCHMARK(StreamUnsynced)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(StreamGroupCommit)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(StreamSyncEachEvent)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK_MAIN();
