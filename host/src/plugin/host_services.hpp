// The services table the host hands to plugins (log, errors, events, spawn, cancellation), and the
// per-call context that binds it to one plugin call or run.
#pragma once

#include <cortexpilot/plugin.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cp::os {
struct Confinement;
}

namespace cp::plugin {

const char* host_version();

// Whether an environment entry ("K=V") names or opens the store: CP_HOST_STORE and libpq's PG* variables
// (PGPASSWORD, PGHOST, PGSERVICEFILE, ...). No plugin, and no process a plugin starts, gets them.
bool is_store_secret(const std::string& kv);
// This process's environment without those entries: what a process it starts for a run or a plugin gets.
std::vector<std::string> environment_without_store_secrets();

// One plugin call's (or one run's) context. Owns the cp_context handed to the plugin; must outlive every
// use the plugin makes of it (for a runner: until release()).
class CallContext {
 public:
  explicit CallContext(std::string plugin_id);
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;

  const cp_context* raw() const { return &raw_; }

  void set_workspace(std::string path);
  void set_bundle_dir(std::string path);
  // A runner's private state folder for the run (cp_context.state_dir, ABI 1.2); empty: NULL.
  void set_state_dir(std::string path);
  // The folder a runner declaring "shared_state:<name>" shares across runs (cp_context.shared_state_dir,
  // ABI 1.3); empty: NULL.
  void set_shared_state_dir(std::string path);
  void set_cancel_flag(const std::atomic<bool>* flag) { cancel_ = flag; }
  // Refuse every spawn through this context (CP_E_UNSUPPORTED): a planner's call runs no process.
  void deny_spawn() { spawn_denied_ = true; }
  bool spawn_denied() const { return spawn_denied_; }
  // Receives emit_event calls; returns false to refuse the event. Unset: events are refused.
  void set_event_sink(std::function<bool(const std::string& type, const std::string& payload_json)> sink) {
    event_sink_ = std::move(sink);
  }

  // Every process spawned through this context carries CP_RUN_ID=<run_id> in its environment (and so do
  // its children), so that recovery can find and kill what a crashed host left running.
  void set_run_id(std::string run_id) { run_id_ = std::move(run_id); }
  const std::string& run_id() const { return run_id_; }

  // The run's sandbox and cgroup: every process spawned through this context enters them. A context with a
  // run id and no confinement refuses to spawn (fail closed): every run context must be given one.
  void set_confinement(std::shared_ptr<const os::Confinement> c) { confinement_ = std::move(c); }
  const std::shared_ptr<const os::Confinement>& confinement() const { return confinement_; }

  const std::string& plugin_id() const { return plugin_id_; }
  const std::string& workspace() const { return workspace_; }
  const std::string& bundle_dir() const { return bundle_dir_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& shared_state_dir() const { return shared_state_dir_; }
  bool cancelled() const { return cancel_ && cancel_->load(); }
  const std::atomic<bool>* cancel_flag() const { return cancel_; }
  bool emit(const std::string& type, const std::string& payload) const {
    return event_sink_ && event_sink_(type, payload);
  }

  static const CallContext* from(const cp_context* raw);

 private:
  cp_context raw_{};
  std::string plugin_id_;
  std::string workspace_;
  std::string bundle_dir_;
  std::string state_dir_;
  std::string shared_state_dir_;
  const std::atomic<bool>* cancel_ = nullptr;
  bool spawn_denied_ = false;
  std::function<bool(const std::string&, const std::string&)> event_sink_;
  std::string run_id_;
  std::shared_ptr<const os::Confinement> confinement_;
};

// Returns the message of a host-allocated error and frees it. Empty for nullptr.
std::string take_error(cp_error* err);

// Collects a plugin's output written into a sink, up to a byte limit.
class SinkBuffer {
 public:
  explicit SinkBuffer(size_t limit) : limit_(limit) { sink_ = {sizeof(cp_sink), this, &SinkBuffer::write}; }
  SinkBuffer(const SinkBuffer&) = delete;
  SinkBuffer& operator=(const SinkBuffer&) = delete;
  cp_sink* sink() { return &sink_; }
  const std::string& data() const { return data_; }
  bool overflowed() const { return overflowed_; }

 private:
  static int write(cp_sink* self, const char* data, size_t len);
  cp_sink sink_;
  std::string data_;
  size_t limit_;
  bool overflowed_ = false;
};

}  // namespace cp::plugin
