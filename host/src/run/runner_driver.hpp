// Driving a runner plugin through one run: its four calls (in process or through cp-plugin-worker), the
// wall-time deadline and signals turned into cancel() (graceful, then forced), and its result checked
// against schemas/runner_result.schema.json. Fail-closed: anything but a valid result is an error result.
#pragma once

#include "plugin/instance.hpp"
#include "plugin/isolated_plugin.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace cp::store {
class Bundle;
}

namespace cp::run {

struct RunnerReport {
  nlohmann::json result;  // validated runner result (schemas/runner_result.schema.json)
  bool interrupted = false;
  bool deadline_hit = false;
  bool abandoned = false;  // the runner never returned: its handle is leaked, not released
};

// The contract's wall time: budgets.wall_time_sec, or timeout_retry.timeout_sec when shorter; 1 h when
// neither is set.
std::chrono::seconds wall_time_of(const nlohmann::json& contract);

// A runner result of status `error` with `reason`.
nlohmann::json runner_error(const std::string& reason);

// The four runner calls, whether the runner is in process or served by cp-plugin-worker.
struct RunnerCalls {
  std::function<plugin::CallOutcome(const std::string&)> start;
  std::function<plugin::CallOutcome(uint64_t timeout_ms)> wait;
  std::function<void(bool force)> cancel;
  std::function<void()> release;
};
RunnerCalls in_process_calls(plugin::Instance& runner, plugin::CallContext& ctx);
RunnerCalls isolated_calls(plugin::IsolatedPlugin& worker, plugin::CallContext& ctx);

// Drives the runner to completion: polls wait(), turns a signal (`interrupt`) or the wall-time deadline
// into cancel() (graceful, then forced, then abandoned), logging RUN_CANCEL_REQUESTED in `bundle`.
RunnerReport drive_runner(const RunnerCalls& runner, const nlohmann::json& input,
                          std::atomic<bool>& cancel_flag, const std::atomic<bool>* interrupt,
                          std::chrono::seconds wall_time, store::Bundle& bundle);

}  // namespace cp::run
