// A plugin served by a cp-plugin-worker process instead of inside cp-host. Every call has a deadline; a
// worker that crashes, hangs, breaks the protocol or floods is killed (SIGTERM, then SIGKILL) and the call
// fails with the signal and the tail of the worker's stderr — never a pass. A failed worker is restarted
// for the next call after a backoff; after repeated consecutive failures the plugin's circuit opens and
// calls fail at once until the process restarts.
#pragma once

#include "plugin/host_services.hpp"
#include "plugin/instance.hpp"
#include "plugin/plugin_info.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cp::plugin {

// cp-plugin-worker next to the running executable, or $CP_PLUGIN_WORKER.
std::filesystem::path worker_path();

// A plugin whose circuit is open in this process: its worker failed kBreakerThreshold times in a row, so
// its calls fail at once until the process restarts. The breaker is per process: a `cp-host run` child's
// circuits end with it, and serve sees only the circuits of the calls serve itself makes.
struct OpenCircuit {
  std::string plugin_id;
  std::filesystem::path library;
  int failures = 0;
  int64_t opened_ms = 0;  // when the failure that opened it was recorded (ms since the epoch)
};
std::vector<OpenCircuit> open_circuits();

class IsolatedPlugin {
 public:
  IsolatedPlugin(PluginInfo info, IsolationLimits limits);
  ~IsolatedPlugin();
  IsolatedPlugin(const IsolatedPlugin&) = delete;
  IsolatedPlugin& operator=(const IsolatedPlugin&) = delete;

  // Gate evaluate / probe through the worker. Events the plugin emits are passed to ctx.
  CallOutcome evaluate(CallContext& ctx, const std::string& input_json, std::chrono::milliseconds deadline);
  CallOutcome probe(CallContext& ctx, std::chrono::milliseconds deadline);
  // A planner's plan() through the worker (ABI 1.4); the worker's context refuses spawns.
  CallOutcome propose_plan(CallContext& ctx, const std::string& input_json,
                           std::chrono::milliseconds deadline);

  // A runner's run in the worker, driven by the host like an in-process one: start, then wait until the
  // status is not CP_PENDING, cancel at any point. Events arrive during wait and go to ctx.
  CallOutcome start_run(CallContext& ctx, const std::string& run_json);
  CallOutcome wait_run(CallContext& ctx, std::chrono::milliseconds timeout);
  void cancel_run(CallContext& ctx, bool force);

  // How long the last worker start (spawn + handshake + create) took; for benchmarks.
  std::chrono::microseconds last_start_time() const { return start_time_; }

  static constexpr int kBreakerThreshold = 3;

 private:
  bool start(std::string& why);
  CallOutcome call(const nlohmann::json& request, CallContext& ctx, std::chrono::milliseconds deadline);
  // Stops the worker; returns "signal 11 (SIGSEGV)" / "exit 3" / "" (still had to be killed: then "killed").
  std::string stop(bool graceful);
  std::string stderr_tail() const;
  CallOutcome failure(const std::string& what);

  PluginInfo info_;
  IsolationLimits limits_;
  int fd_ = -1;
  int pid_ = -1;
  std::filesystem::path log_;
  std::chrono::microseconds start_time_{0};
};

}  // namespace cp::plugin
