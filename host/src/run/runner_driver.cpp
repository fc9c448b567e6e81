#include "run/runner_driver.hpp"
#include "core/json_depth.hpp"
#include "core/schema_catalog.hpp"
#include "store/bundle.hpp"

#include <cortexpilot/plugin.h>

#include <memory>
#include <optional>

namespace cp::run {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);
constexpr auto kForceAfter = std::chrono::seconds(5);     // graceful cancel -> forced cancel
constexpr auto kAbandonAfter = std::chrono::seconds(30);  // forced cancel -> give up on the runner

}  // namespace

std::chrono::seconds wall_time_of(const json& contract) {
  long secs = 0;
  if (contract.contains("budgets")) secs = contract["budgets"].value("wall_time_sec", 0L);
  if (contract.contains("timeout_retry")) {
    long t = contract["timeout_retry"].value("timeout_sec", 0L);
    if (t > 0 && (secs == 0 || t < secs)) secs = t;
  }
  return std::chrono::seconds(secs > 0 ? secs : 3600);
}

json runner_error(const std::string& reason) {
  return json{{"status", "error"}, {"reason", reason}, {"commands", json::array()}};
}

RunnerCalls in_process_calls(plugin::Instance& runner, plugin::CallContext& ctx) {
  auto run = std::make_shared<void*>(nullptr);
  return {[&runner, &ctx, run](const std::string& input) { return runner.start(ctx, input, *run); },
          [&runner, run](uint64_t ms) { return runner.wait(*run, ms); },
          [&runner, run](bool force) { runner.cancel(*run, force); },
          [&runner, run] { runner.release(*run); }};
}

RunnerCalls isolated_calls(plugin::IsolatedPlugin& worker, plugin::CallContext& ctx) {
  return {[&worker, &ctx](const std::string& input) { return worker.start_run(ctx, input); },
          [&worker, &ctx](uint64_t ms) { return worker.wait_run(ctx, std::chrono::milliseconds(ms)); },
          [&worker, &ctx](bool force) { worker.cancel_run(ctx, force); },
          [] {}};  // the worker releases the run itself when wait reports the end
}

// Drives the runner to completion: polls wait(), turns a signal or the wall-time deadline into cancel()
// (graceful, then forced), and validates what the runner returns.
RunnerReport drive_runner(const RunnerCalls& runner, const json& input, std::atomic<bool>& cancel_flag,
                          const std::atomic<bool>* interrupt, std::chrono::seconds wall_time,
                          store::Bundle& bundle) {
  RunnerReport rep;
  auto started = runner.start(input.dump());
  if (!started.ok()) {
    rep.result = runner_error("runner start failed: " + started.error);
    return rep;
  }
  auto deadline = Clock::now() + wall_time;
  std::optional<Clock::time_point> cancel_at;
  bool forced = false;
  while (true) {
    auto out = runner.wait(static_cast<uint64_t>(kPoll.count()));
    if (out.status != CP_PENDING) {
      if (!out.ok()) {
        rep.result = runner_error("runner wait failed: " + out.error);
      } else {
        json doc = core::json_depth_ok(out.output) ? json::parse(out.output, nullptr, false)
                                                   : json(json::value_t::discarded);
        auto v = doc.is_discarded() ? std::vector<core::SchemaViolation>{{"", "json", "not JSON", ""}}
                                    : core::schema("runner_result").validate(doc);
        rep.result = v.empty()
                         ? doc
                         : runner_error("runner result breaks schemas/runner_result.schema.json at " +
                                        (v[0].pointer.empty() ? "/" : v[0].pointer) + ": " + v[0].message);
      }
      runner.release();
      return rep;
    }
    auto now = Clock::now();
    if (!cancel_at) {
      std::string why;
      if (interrupt && interrupt->load())
        rep.interrupted = true, why = "signal";
      else if (now >= deadline)
        rep.deadline_hit = true, why = "wall_time";
      if (!why.empty()) {
        cancel_at = now;
        cancel_flag = true;
        bundle.events().append("RUN_CANCEL_REQUESTED",
                               {{"reason", why}, {"wall_time_sec", static_cast<long>(wall_time.count())}});
        runner.cancel(false);
      }
    } else if (!forced && now - *cancel_at >= kForceAfter) {
      forced = true;
      runner.cancel(true);
    } else if (now - *cancel_at >= kAbandonAfter) {
      rep.abandoned = true;
      rep.result = runner_error("the runner did not stop within " + std::to_string(kAbandonAfter.count()) +
                                " s of a forced cancel");
      return rep;
    }
  }
}

}  // namespace cp::run
