// An in-process plugin instance: create() on construction, destroy() on destruction, and the kind's calls
// in between, serialized as plugin.h promises.
#pragma once

#include "plugin/host_services.hpp"
#include "plugin/plugin_info.hpp"

#include <memory>
#include <mutex>
#include <string>

namespace cp::plugin {

// What one call into a plugin gave back.
struct CallOutcome {
  int status = CP_E_FAILED;  // cp_status
  std::string output;        // the bytes written to the sink
  std::string error;         // the plugin's error message, or the host's reason
  bool ok() const { return status == CP_OK; }
};

class Instance {
 public:
  // Creates an instance with info.config_json (already validated by the registry). On failure returns
  // nullptr and sets `error`.
  static std::unique_ptr<Instance> create(const PluginInfo& info, std::string& error);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const PluginInfo& info() const { return info_; }

  // Output larger than this is refused (the call fails with CP_E_LIMIT).
  static constexpr size_t kOutputLimit = 16u << 20;

  CallOutcome evaluate(CallContext& ctx, const std::string& input_json);   // gate
  CallOutcome probe(CallContext& ctx);                                     // probe
  CallOutcome plan(CallContext& ctx, const std::string& lane_input_json);  // retention lane

  // A planner's plan() (ABI 1.4): one planner input in, one planner output back.
  CallOutcome propose_plan(CallContext& ctx, const std::string& input_json);

  // Runner calls, in plugin.h's legal order: start -> wait* [-> cancel] -> wait OK -> release. `ctx` must
  // outlive release(). wait() returns status CP_PENDING while the run goes on; cancel() may be called
  // from another thread while wait() runs (the one concurrent call plugin.h allows).
  CallOutcome start(CallContext& ctx, const std::string& run_json, void*& run);
  CallOutcome wait(void* run, uint64_t timeout_ms);
  void cancel(void* run, bool force);
  void release(void* run);

 private:
  Instance(const PluginInfo& info, void* handle) : info_(info), handle_(handle) {}
  CallOutcome finish(cp_status st, cp_error* err, SinkBuffer& out);
  PluginInfo info_;
  void* handle_;
  std::mutex mu_;
};

}  // namespace cp::plugin
