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
#include <filesystem>
#include <string>

namespace cp::plugin {

// cp-plugin-worker next to the running executable, or $CP_PLUGIN_WORKER.
std::filesystem::path worker_path();

class IsolatedPlugin {
 public:
  IsolatedPlugin(PluginInfo info, IsolationLimits limits);
  ~IsolatedPlugin();
  IsolatedPlugin(const IsolatedPlugin&) = delete;
  IsolatedPlugin& operator=(const IsolatedPlugin&) = delete;

  // Gate evaluate / probe through the worker. Events the plugin emits are passed to ctx.
  CallOutcome evaluate(CallContext& ctx, const std::string& input_json, std::chrono::milliseconds deadline);
  CallOutcome probe(CallContext& ctx, std::chrono::milliseconds deadline);

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
