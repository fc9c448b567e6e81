// What a command tower answer costs the server, without HTTP: the aggregate of 100,000 runs (four gates each,
// verdicts, durations and finish times spread over 30 days, a few live and waiting runs) and a queue of 500
// items, then
//  - Overview / Alerts: CommandTower::overview() and alerts() as the routes call them (JSON built, not
//    serialised);
//  - UpdateOneRun: what the catalogue's refresh adds per re-read run (a live run's summary replaced);
//  - Build: the whole aggregate from 100,000 summaries, what serve's start adds to its indexing.
#include "core/clock.hpp"
#include "queue/queue_state.hpp"
#include "serve/alert_rules.hpp"
#include "serve/command_tower.hpp"
#include "serve/queue_stats.hpp"
#include "serve/run_stats.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
namespace core = cp::core;
namespace serve = cp::serve;

constexpr int kRuns = 100000;
const int64_t kNow = core::now_ms();
const int64_t kSpan = 30LL * 86400 * 1000;

cp::store::RunSummary summary(int i) {
  static const char* verdicts[] = {"success", "success", "success", "success", "success",
                                   "success", "success", "success", "failure", "denied"};
  cp::store::RunSummary s;
  s.run_id = "bench-" + std::to_string(i);
  s.task_id = "task-" + std::to_string(i % 500);
  int64_t end = kNow - kSpan + kSpan * i / kRuns;
  long long dur = 2000 + (i * 7919LL) % 600000;
  s.created_at = core::iso_from_ms(end - dur);
  s.finished_at = core::iso_from_ms(end);
  s.duration_ms = dur;
  if (i % 5000 == 0) {
    s.status = "running";
    s.events_mtime_ms = kNow - (i % 3) * 600 * 1000;
    s.duration_ms = -1;
  } else if (i % 3001 == 0) {
    s.status = "awaiting_approval";
    s.approval_requested_at = s.finished_at;
    s.approval_deadline = core::iso_from_ms(kNow + (i % 48) * 3600 * 1000);
  } else {
    s.status = "sealed";
    s.verdict = verdicts[i % 10];
  }
  bool failed = s.verdict == "failure";
  s.gates = {{"diff_scope", i % 50 == 0 ? "fail" : "pass"},
             {"acceptance_tests", failed ? "fail" : "pass"},
             {"forbidden_actions", s.verdict == "denied" ? "fail" : "pass"},
             {"required_outputs", failed && i % 3 == 0 ? "error" : "pass"}};
  return s;
}

struct Fixture {
  serve::RunStats runs;
  std::unique_ptr<serve::CommandTower> tower;
  Fixture() {
    for (int i = 0; i < kRuns; ++i) runs.update(summary(i));
    tower = std::make_unique<serve::CommandTower>(".", runs, serve::AlertPolicy{});
    cp::queue::QueueState q;
    for (int i = 0; i < 500; ++i) {
      std::string id = "q-" + std::to_string(i);
      json en{{"op", "enqueued"},
              {"item_id", id},
              {"ts", core::iso_from_ms(kNow - 3600 * 1000)},
              {"task_id", "t"},
              {"timeout_sec", 1800}};
      if (i % 10 == 0) en["deadline"] = core::iso_from_ms(kNow + (i % 30 - 10) * 60 * 1000);
      q.apply(en);
      if (i % 4 == 0) {
        q.apply({{"op", "claimed"},
                 {"item_id", id},
                 {"ts", core::iso_from_ms(kNow - 600 * 1000)},
                 {"attempt", 1}});
        q.apply({{"op", "finished"},
                 {"item_id", id},
                 {"ts", core::iso_from_ms(kNow - 500 * 1000)},
                 {"attempt", 1},
                 {"status", "timeout"}});
        q.apply({{"op", "retried"}, {"item_id", id}, {"ts", core::iso_from_ms(kNow - 500 * 1000)}});
      }
    }
    tower->set_queue(serve::derive_queue_stats(q, kNow));
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void Overview(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) benchmark::DoNotOptimize(f.tower->overview(kNow));
}
BENCHMARK(Overview)->Unit(benchmark::kMicrosecond);

void Alerts(benchmark::State& state) {
  auto& f = fixture();
  state.counters["alerts"] = static_cast<double>(f.tower->alerts(kNow)["count"].get<long long>());
  for (auto _ : state) benchmark::DoNotOptimize(f.tower->alerts(kNow));
}
BENCHMARK(Alerts)->Unit(benchmark::kMicrosecond);

void UpdateOneRun(benchmark::State& state) {
  auto& f = fixture();
  auto s = summary(5000);  // a live run, as the refresher re-reads it every second
  for (auto _ : state) {
    s.events_mtime_ms += 1;
    f.runs.update(s);
  }
}
BENCHMARK(UpdateOneRun)->Unit(benchmark::kMicrosecond);

void Build(benchmark::State& state) {
  std::vector<cp::store::RunSummary> all;
  for (int i = 0; i < kRuns; ++i) all.push_back(summary(i));
  for (auto _ : state) {
    serve::RunStats st;
    for (const auto& s : all) st.update(s);
    benchmark::DoNotOptimize(st.total());
  }
}
BENCHMARK(Build)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
