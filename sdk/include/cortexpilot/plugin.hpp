// cortexpilot/plugin.hpp — header-only C++ wrapper over the C ABI in plugin.h.
//
// A plugin written with this header:
//   1. derives a class from cp::Gate, cp::Probe, cp::Runner, cp::RetentionLane or cp::Planner (ABI 1.4);
//   2. gives it a constructor `T(cp::Context& ctx, const std::string& config_json)` (the config has already
//      been validated by the host against the schema the descriptor publishes);
//   3. lists its descriptors once with CP_PLUGIN(name, version, cp::gate<T>(...), ...).
// The macro generates the one exported C symbol. Every exception thrown by plugin code is caught at the
// boundary and becomes a cp_error (cp::Error keeps its status code; anything else is CP_E_FAILED), so nothing
// ever unwinds into the host.
//
// Ownership and threads follow plugin.h: inputs are borrowed for the call, outputs are returned as
// std::string and copied into the host's sink by the wrapper, and calls into one instance are serialized
// by the host (Runner runs: cancel() may come from another thread while wait() blocks).
#ifndef CORTEXPILOT_PLUGIN_HPP
#define CORTEXPILOT_PLUGIN_HPP

#include <cortexpilot/plugin.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cp {

// Throw to fail a call with a specific status; the message reaches the user and the run bundle.
class Error : public std::runtime_error {
 public:
  Error(cp_status code, const std::string& message) : std::runtime_error(message), code_(code) {}
  cp_status code() const noexcept { return code_; }

 private:
  cp_status code_;
};

// Options for Context::spawn. The host owns the process (group, deadline, kill, reap).
struct SpawnOptions {
  std::vector<std::string> argv;                // argv[0] looked up in PATH when it has no '/'
  std::string cwd;                              // empty = the run's workspace or the host's cwd
  std::optional<std::vector<std::string>> env;  // "K=V" entries replacing the environment
  uint64_t timeout_ms = 0;                      // 0 = none beyond the run's own cancellation
  std::string stdout_path;                      // also write stdout here when non-empty
  std::string stderr_path;                      // also write stderr here when non-empty
  size_t capture_limit = 1 << 20;               // bytes of each stream kept in SpawnResult
  // Called with stdout bytes as they arrive, on the calling thread (chunks, not lines). Return false to
  // have the host stop the process (SpawnResult::cancelled is then true). Exceptions must not escape.
  std::function<bool(std::string_view)> on_stdout;
  // ABI 1.3: CP_SPAWN_* bits (CP_SPAWN_LOOPBACK_LISTENER).
  uint32_t flags = 0;
  // ABI 1.3: polled by the host about every 20 ms on the calling thread; return false to have the host
  // stop the process (SpawnResult::cancelled is then true). Exceptions must not escape.
  std::function<bool()> keep_running;
};

struct SpawnResult {
  bool started = false;
  int exit_code = -1;
  int term_signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  uint64_t duration_ms = 0;
  std::string out;         // first capture_limit bytes of stdout
  std::string err;         // first capture_limit bytes of stderr
  bool truncated = false;  // true when either stream was longer than capture_limit
  bool ok() const { return started && exit_code == 0 && term_signal == 0 && !timed_out && !cancelled; }
};

// The per-call view of the host. Cheap to copy; valid only while the call that received it runs (for a
// runner: from start() until release() of that run).
class Context {
 public:
  explicit Context(const cp_context* raw) : raw_(raw) {}
  const cp_context* raw() const { return raw_; }

  std::string workspace() const { return raw_ && raw_->workspace ? raw_->workspace : ""; }
  std::string bundle_dir() const { return raw_ && raw_->bundle_dir ? raw_->bundle_dir : ""; }
  // A runner's private state folder for this run (ABI 1.2, cp_context.state_dir); empty for other kinds,
  // outside a run, or when the host's context predates the field.
  std::string state_dir() const {
    return CP_CONTEXT_HAS(raw_, state_dir) && raw_->state_dir ? raw_->state_dir : "";
  }
  // The folder shared across runs that a runner declaring "shared_state:<name>" gets (ABI 1.3,
  // cp_context.shared_state_dir); empty otherwise.
  std::string shared_state_dir() const {
    return CP_CONTEXT_HAS(raw_, shared_state_dir) && raw_->shared_state_dir ? raw_->shared_state_dir : "";
  }

  void log(cp_log_level level, const std::string& message) const {
    if (raw_ && raw_->services && raw_->services->log) raw_->services->log(raw_, level, message.c_str());
  }
  // Append an event to the run's log. Throws cp::Error when the host refuses it.
  void emit(const std::string& type, const std::string& payload_json) const {
    if (!raw_ || !raw_->services || !raw_->services->emit_event)
      throw Error(CP_E_UNSUPPORTED, "host offers no event service");
    cp_status st = raw_->services->emit_event(raw_, type.c_str(), payload_json.c_str());
    if (st != CP_OK) throw Error(st, "host refused event " + type);
  }
  bool cancelled() const {
    return raw_ && raw_->services && raw_->services->is_cancelled && raw_->services->is_cancelled(raw_) != 0;
  }

  // Run a process to completion through the host. Throws cp::Error only when the host has no spawn
  // service; a process that fails to start is reported in SpawnResult::started.
  SpawnResult spawn(const SpawnOptions& options) const {
    if (!raw_ || !raw_->services || !raw_->services->spawn)
      throw Error(CP_E_UNSUPPORTED, "host offers no spawn service");
    std::vector<const char*> argv;
    for (const auto& a : options.argv) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    std::vector<const char*> env;
    if (options.env) {
      for (const auto& e : *options.env) env.push_back(e.c_str());
      env.push_back(nullptr);
    }
    SpawnResult result;
    Capture out{&result.out, options.capture_limit, &result.truncated, &options.on_stdout};
    Capture err{&result.err, options.capture_limit, &result.truncated, nullptr};
    cp_sink out_sink{sizeof(cp_sink), &out, &Capture::write};
    cp_sink err_sink{sizeof(cp_sink), &err, &Capture::write};
    cp_spawn_request req{};
    req.struct_size = sizeof(req);
    req.argv = argv.data();
    req.cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
    req.env = options.env ? env.data() : nullptr;
    req.timeout_ms = options.timeout_ms;
    req.stdout_path = options.stdout_path.empty() ? nullptr : options.stdout_path.c_str();
    req.stderr_path = options.stderr_path.empty() ? nullptr : options.stderr_path.c_str();
    req.stdout_sink = &out_sink;
    req.stderr_sink = &err_sink;
    req.flags = options.flags;
    if (options.keep_running) {
      req.keep_running = &keep_running_thunk;
      req.keep_running_arg = const_cast<std::function<bool()>*>(&options.keep_running);
    }
    cp_spawn_result res{};
    res.struct_size = sizeof(res);
    cp_status st = raw_->services->spawn(raw_, &req, &res);
    if (st != CP_OK && st != CP_E_TIMEOUT && st != CP_E_CANCELLED)
      throw Error(st, "host could not run " + (options.argv.empty() ? std::string("?") : options.argv[0]));
    result.started = res.started != 0;
    result.exit_code = res.exit_code;
    result.term_signal = res.term_signal;
    result.timed_out = res.timed_out != 0;
    result.cancelled = res.cancelled != 0;
    result.duration_ms = res.duration_ms;
    return result;
  }

 private:
  static int keep_running_thunk(void* arg) { return (*static_cast<std::function<bool()>*>(arg))() ? 1 : 0; }
  struct Capture {
    std::string* into;
    size_t limit;
    bool* truncated;
    const std::function<bool(std::string_view)>* on_data;
    static int write(cp_sink* self, const char* data, size_t len) {
      auto* c = static_cast<Capture*>(self->opaque);
      size_t room = c->into->size() < c->limit ? c->limit - c->into->size() : 0;
      if (len > room) *c->truncated = true;
      c->into->append(data, len < room ? len : room);
      // Past the capture limit we only stop keeping bytes; the callback alone may stop the process.
      if (c->on_data && *c->on_data && !(*c->on_data)(std::string_view(data, len))) return 1;
      return 0;
    }
  };
  const cp_context* raw_;
};

// Base classes. The host never sees them: the thunks below adapt them to the C tables.
class Gate {
 public:
  virtual ~Gate() = default;
  // Return one JSON verdict (schemas/gate_verdict.schema.json).
  virtual std::string evaluate(Context& ctx, const std::string& input_json) = 0;
};

class Probe {
 public:
  virtual ~Probe() = default;
  // Return capability JSON (schemas/probe_result.schema.json).
  virtual std::string probe(Context& ctx) = 0;
};

class RetentionLane {
 public:
  virtual ~RetentionLane() = default;
  virtual std::string plan(Context& ctx, const std::string& lane_input_json) = 0;
  // Only called when the descriptor carries CP_FLAG_LANE_APPLIES_OWN_PLAN.
  virtual std::string apply(Context&, const std::string&) {
    throw Error(CP_E_UNSUPPORTED, "this lane does not apply its own plans");
  }
};

// ABI 1.4. Called outside any run (no workspace, no events, no spawn): read the input, perhaps ask a model.
class Planner {
 public:
  virtual ~Planner() = default;
  // Answer one planner input (schemas/planner_input.schema.json) with one planner output
  // (schemas/planner_output.schema.json): questions, a plan, or no_match. ctx.cancelled() turns true when
  // the host's deadline for the call has passed.
  virtual std::string plan(Context& ctx, const std::string& input_json) = 0;
};

// One run of a runner. Destroyed by the host's release() call.
class RunnerRun {
 public:
  virtual ~RunnerRun() = default;
  // Wait up to timeout_ms. Return true and fill result_json when finished, false when still running.
  virtual bool wait(uint64_t timeout_ms, std::string& result_json) = 0;
  // May be called from another thread while wait() blocks. Must be idempotent.
  virtual void cancel(bool force) = 0;
};

class Runner {
 public:
  virtual ~Runner() = default;
  // `ctx` stays valid until the returned run is released: keep it for spawning and events.
  virtual std::unique_ptr<RunnerRun> start(Context ctx, const std::string& run_json) = 0;
};

namespace detail {

inline cp_status fail(const cp_context* ctx, cp_error** err, cp_status code, const char* message) {
  if (err && ctx && ctx->services && ctx->services->make_error)
    *err = ctx->services->make_error(ctx, code, message);
  return code;
}

// Runs `body`, turning every exception into a status + host error. `body` returns a cp_status.
template <class F>
cp_status guarded(const cp_context* ctx, cp_error** err, F&& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    return fail(ctx, err, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return fail(ctx, err, CP_E_LIMIT, "out of memory");
  } catch (const std::exception& e) {
    return fail(ctx, err, CP_E_FAILED, e.what());
  } catch (...) {
    return fail(ctx, err, CP_E_FAILED, "unknown exception in plugin");
  }
}

inline cp_status emit(cp_sink* out, const std::string& doc) {
  if (!out || !out->write) return CP_E_INVALID;
  return out->write(out, doc.data(), doc.size()) == 0 ? CP_OK : CP_E_LIMIT;
}

template <class T>
cp_status create(const cp_context* ctx, const char* config_json, void** out_instance, cp_error** err) {
  return guarded(ctx, err, [&] {
    Context c(ctx);
    *out_instance = new T(c, std::string(config_json ? config_json : "{}"));
    return CP_OK;
  });
}

template <class Base>
void destroy(void* instance) {
  delete static_cast<Base*>(instance);
}

template <class T>
struct GateThunks {
  static cp_status evaluate(void* inst, const cp_context* ctx, const char* input, cp_sink* out,
                            cp_error** err) {
    return guarded(ctx, err, [&] {
      Context c(ctx);
      return emit(out, static_cast<Gate*>(static_cast<T*>(inst))->evaluate(c, input ? input : "{}"));
    });
  }
  static constexpr cp_gate_vtable table{sizeof(cp_gate_vtable), &create<T>, &destroy<T>, &evaluate};
};

template <class T>
struct ProbeThunks {
  static cp_status probe(void* inst, const cp_context* ctx, cp_sink* out, cp_error** err) {
    return guarded(ctx, err, [&] {
      Context c(ctx);
      return emit(out, static_cast<Probe*>(static_cast<T*>(inst))->probe(c));
    });
  }
  static constexpr cp_probe_vtable table{sizeof(cp_probe_vtable), &create<T>, &destroy<T>, &probe};
};

template <class T>
struct LaneThunks {
  static cp_status plan(void* inst, const cp_context* ctx, const char* input, cp_sink* out, cp_error** err) {
    return guarded(ctx, err, [&] {
      Context c(ctx);
      return emit(out, static_cast<RetentionLane*>(static_cast<T*>(inst))->plan(c, input ? input : "{}"));
    });
  }
  static cp_status apply(void* inst, const cp_context* ctx, const char* plan, cp_sink* out, cp_error** err) {
    return guarded(ctx, err, [&] {
      Context c(ctx);
      return emit(out, static_cast<RetentionLane*>(static_cast<T*>(inst))->apply(c, plan ? plan : "{}"));
    });
  }
  static constexpr cp_retention_lane_vtable table{sizeof(cp_retention_lane_vtable), &create<T>, &destroy<T>,
                                                  &plan, &apply};
};

template <class T>
struct PlannerThunks {
  static cp_status plan(void* inst, const cp_context* ctx, const char* input, cp_sink* out, cp_error** err) {
    return guarded(ctx, err, [&] {
      Context c(ctx);
      return emit(out, static_cast<Planner*>(static_cast<T*>(inst))->plan(c, input ? input : "{}"));
    });
  }
  static constexpr cp_planner_vtable table{sizeof(cp_planner_vtable), &create<T>, &destroy<T>, &plan};
};

template <class T>
struct RunnerThunks {
  struct Handle {
    std::unique_ptr<RunnerRun> run;
    const cp_context* ctx;
  };
  static cp_status start(void* inst, const cp_context* ctx, const char* run_json, void** out_run,
                         cp_error** err) {
    return guarded(ctx, err, [&] {
      auto run = static_cast<Runner*>(static_cast<T*>(inst))->start(Context(ctx), run_json ? run_json : "{}");
      if (!run) throw Error(CP_E_FAILED, "runner returned no run");
      *out_run = new Handle{std::move(run), ctx};
      return CP_OK;
    });
  }
  static cp_status wait(void*, void* run, uint64_t timeout_ms, cp_sink* out, cp_error** err) {
    auto* h = static_cast<Handle*>(run);
    return guarded(h->ctx, err, [&] {
      std::string result;
      if (!h->run->wait(timeout_ms, result)) return CP_PENDING;
      return emit(out, result);
    });
  }
  static cp_status cancel(void*, void* run, int32_t force) {
    auto* h = static_cast<Handle*>(run);
    return guarded(h->ctx, nullptr, [&] {
      h->run->cancel(force != 0);
      return CP_OK;
    });
  }
  static void release(void*, void* run) { delete static_cast<Handle*>(run); }
  static constexpr cp_runner_vtable table{
      sizeof(cp_runner_vtable), &create<T>, &destroy<T>, &start, &wait, &cancel, &release};
};

inline cp_plugin_descriptor describe(cp_plugin_kind kind, const char* id, const char* version,
                                     const char* description, const char* config_schema,
                                     const char* capabilities, uint32_t flags, const void* vtable) {
  return cp_plugin_descriptor{sizeof(cp_plugin_descriptor),
                              kind,
                              id,
                              version,
                              description,
                              config_schema,
                              capabilities,
                              flags,
                              vtable};
}

}  // namespace detail

// Descriptor builders for CP_PLUGIN. Strings must have static storage (literals are fine).
// A gate's `flags` (ABI 1.2) declare how the host treats it: CP_FLAG_GATE_POLICY (a required gate's fail
// seals the run "denied"), CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER (skipped when the runner did not complete).
template <class T>
cp_plugin_descriptor gate(const char* id, const char* version, const char* description,
                          const char* config_schema = "{\"type\":\"object\"}",
                          const char* capabilities = "[]", uint32_t flags = 0) {
  return detail::describe(CP_KIND_GATE, id, version, description, config_schema, capabilities, flags,
                          &detail::GateThunks<T>::table);
}
template <class T>
cp_plugin_descriptor probe(const char* id, const char* version, const char* description,
                           const char* config_schema = "{\"type\":\"object\"}",
                           const char* capabilities = "[]") {
  return detail::describe(CP_KIND_PROBE, id, version, description, config_schema, capabilities, 0,
                          &detail::ProbeThunks<T>::table);
}
template <class T>
cp_plugin_descriptor runner(const char* id, const char* version, const char* description,
                            const char* config_schema = "{\"type\":\"object\"}",
                            const char* capabilities = "[]") {
  return detail::describe(CP_KIND_RUNNER, id, version, description, config_schema, capabilities, 0,
                          &detail::RunnerThunks<T>::table);
}
template <class T>
cp_plugin_descriptor retention_lane(const char* id, const char* version, const char* description,
                                    const char* config_schema = "{\"type\":\"object\"}",
                                    const char* capabilities = "[]", uint32_t flags = 0) {
  return detail::describe(CP_KIND_RETENTION_LANE, id, version, description, config_schema, capabilities,
                          flags, &detail::LaneThunks<T>::table);
}

// ABI 1.4: a planner (questions from a request, then a plan).
template <class T>
cp_plugin_descriptor planner(const char* id, const char* version, const char* description,
                             const char* config_schema = "{\"type\":\"object\"}",
                             const char* capabilities = "[]") {
  return detail::describe(CP_KIND_PLANNER, id, version, description, config_schema, capabilities, 0,
                          &detail::PlannerThunks<T>::table);
}

}  // namespace cp

// Generates the exported entry point. NAME and VERSION are string literals; the rest are descriptors built
// with cp::gate<T>(...), cp::probe<T>(...), cp::runner<T>(...), cp::retention_lane<T>(...),
// cp::planner<T>(...).
#define CP_PLUGIN(NAME, VERSION, ...)                                                                     \
  extern "C" CP_PLUGIN_EXPORT cp_status cp_plugin_entry(const cp_host_info* host,                         \
                                                        const cp_plugin_manifest** out, cp_error** err) { \
    return ::cp::detail::guarded(host ? host->context : nullptr, err, [&] {                               \
      static const cp_plugin_descriptor descriptors[] = {__VA_ARGS__};                                    \
      static const cp_plugin_manifest manifest = {sizeof(cp_plugin_manifest),                             \
                                                  CP_PLUGIN_ABI_MAJOR,                                    \
                                                  CP_PLUGIN_ABI_MINOR,                                    \
                                                  NAME,                                                   \
                                                  VERSION,                                                \
                                                  sizeof(descriptors) / sizeof(descriptors[0]),           \
                                                  descriptors};                                           \
      *out = &manifest;                                                                                   \
      return CP_OK;                                                                                       \
    });                                                                                                   \
  }

#endif  // CORTEXPILOT_PLUGIN_HPP
