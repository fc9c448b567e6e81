#include "plugin/host_services.hpp"

#include "core/version.hpp"
#include "log/logger.hpp"
#include "os/confinement.hpp"
#include "os/process.hpp"

#include <unistd.h>

#include <cstddef>

#include <new>

namespace cp::plugin {
namespace {

// A cp_error with its message storage; cp_error must stay the first member so the host can free it
// from the cp_error* it gets back.
struct HostError {
  cp_error error;
  std::string message;
};
static_assert(offsetof(HostError, error) == 0);

void svc_log(const cp_context* raw, cp_log_level level, const char* message) {
  const CallContext* ctx = CallContext::from(raw);
  std::string who = ctx ? ctx->plugin_id() : "plugin";
  std::string msg = message ? message : "";
  switch (level) {
    case CP_LOG_DEBUG:
      log::debug("[" + who + "] " + msg);
      break;
    case CP_LOG_INFO:
      log::info("[" + who + "] " + msg);
      break;
    case CP_LOG_WARN:
      log::warn("[" + who + "] " + msg);
      break;
    default:
      log::error("[" + who + "] " + msg);
      break;
  }
}

cp_error* svc_make_error(const cp_context*, int32_t code, const char* message) {
  auto* e = new HostError{};
  e->message = message ? message : "";
  e->error.struct_size = sizeof(cp_error);
  e->error.code = code;
  e->error.message = e->message.c_str();
  return &e->error;
}

// UPPER_SNAKE_CASE of at most 64 characters, checked by hand: the type comes from a plugin, and a
// backtracking regex over an unbounded string is a stack to overflow.
bool upper_snake(const char* type) {
  size_t n = 0;
  for (const char* c = type; *c; ++c, ++n) {
    bool ok = (*c >= 'A' && *c <= 'Z') || (n > 0 && ((*c >= '0' && *c <= '9') || *c == '_'));
    if (!ok || n >= 64) return false;
  }
  return n > 0;
}

cp_status svc_emit_event(const cp_context* raw, const char* type, const char* payload_json) {
  const CallContext* ctx = CallContext::from(raw);
  if (!ctx) return CP_E_UNSUPPORTED;
  if (!type || !payload_json || !upper_snake(type)) return CP_E_INVALID;
  return ctx->emit(type, payload_json) ? CP_OK : CP_E_UNSUPPORTED;
}

// True when a request built by the plugin reaches past `field` (fields appended by later minors).
#define CP_REQUEST_HAS(req, field) \
  ((size_t)(req)->struct_size >= offsetof(cp_spawn_request, field) + sizeof((req)->field))

// The run's sandbox for one spawn: the run's own, or (CP_SPAWN_LOOPBACK_LISTENER, network denied) a copy
// that may also bind an ephemeral port and stays in the host's network namespace. Null with `error`.
std::shared_ptr<const os::PreparedSandbox> spawn_sandbox(const os::Confinement& conf, uint32_t flags,
                                                         const std::string& shared_state,
                                                         std::string& error) {
  const os::SandboxPolicy& policy = conf.sandbox->policy();
  bool listen = (flags & CP_SPAWN_LOOPBACK_LISTENER) && !policy.network;
  bool share = (flags & CP_SPAWN_SHARED_STATE) && !shared_state.empty();
  if (!policy.enabled || (!listen && !share)) return conf.sandbox;
  os::SandboxPolicy own = policy;
  own.ephemeral_listener = listen;
  if (share) own.write_paths.push_back(shared_state);
  return os::PreparedSandbox::prepare(own, error);
}

cp_status svc_spawn(const cp_context* raw, const cp_spawn_request* req, cp_spawn_result* res) {
  const CallContext* ctx = CallContext::from(raw);
  if (!req || !res || !req->argv || !req->argv[0]) return CP_E_INVALID;
  const uint32_t flags = CP_REQUEST_HAS(req, flags) ? req->flags : 0;
  if (flags & ~CP_SPAWN_ALL) return CP_E_INVALID;
  if (ctx && ctx->spawn_denied()) {
    log::warn("[" + ctx->plugin_id() + "] spawn refused: this call may not start processes");
    return CP_E_UNSUPPORTED;
  }
  os::ProcessSpec spec;
  if (ctx && !ctx->run_id().empty()) {
    const auto& conf = ctx->confinement();
    if (!conf || !conf->sandbox) {
      log::error("[" + ctx->plugin_id() + "] spawn refused: run " + ctx->run_id() + " has no sandbox");
      return CP_E_UNSUPPORTED;
    }
    std::string error;
    if ((flags & CP_SPAWN_SHARED_STATE) && ctx->shared_state_dir().empty()) return CP_E_UNSUPPORTED;
    spec.sandbox = spawn_sandbox(*conf, flags, ctx->shared_state_dir(), error);
    if (!spec.sandbox) {
      log::error("[" + ctx->plugin_id() + "] spawn refused: " + error);
      return CP_E_UNSUPPORTED;
    }
    if (conf->cgroup) spec.cgroup_procs_fd = conf->cgroup->procs_fd();
  }
  for (const char* const* a = req->argv; *a; ++a) spec.argv.emplace_back(*a);
  if (req->cwd)
    spec.cwd = req->cwd;
  else if (ctx && !ctx->workspace().empty())
    spec.cwd = ctx->workspace();
  if (req->env) {
    spec.env.emplace();
    for (const char* const* e = req->env; *e; ++e) spec.env->emplace_back(*e);
  }
  spec.timeout = std::chrono::milliseconds(req->timeout_ms);
  if (req->stdout_path) spec.stdout_path = req->stdout_path;
  if (req->stderr_path) spec.stderr_path = req->stderr_path;
  std::atomic<bool> stop{false};
  spec.stop = &stop;
  if (cp_sink* s = req->stdout_sink)
    spec.on_stdout = [s, &stop](std::string_view chunk) {
      if (s->write(s, chunk.data(), chunk.size()) == 0) return true;
      stop = true;  // the plugin asked for the process to be stopped
      return false;
    };
  if (cp_sink* s = req->stderr_sink)
    spec.on_stderr = [s](std::string_view chunk) { return s->write(s, chunk.data(), chunk.size()) == 0; };
  if (ctx) spec.cancel = ctx->cancel_flag();
  if (CP_REQUEST_HAS(req, keep_running_arg) && req->keep_running) {
    auto* fn = req->keep_running;
    void* arg = req->keep_running_arg;
    spec.keep_running = [fn, arg] { return fn(arg) != 0; };
  }
  if (ctx && !ctx->run_id().empty()) {
    if (!spec.env) {
      spec.env.emplace();
      for (char** e = environ; *e; ++e) spec.env->emplace_back(*e);
    }
    std::erase_if(*spec.env, [](const std::string& kv) { return kv.rfind("CP_RUN_ID=", 0) == 0; });
    spec.env->push_back("CP_RUN_ID=" + ctx->run_id());
    // The run's own temp dir (the shared /tmp is not writable inside the sandbox) and its scratch folder
    // in the bundle, where whatever it leaves is kept as evidence.
    const auto& policy = ctx->confinement()->sandbox->policy();
    std::erase_if(*spec.env, [](const std::string& kv) {
      for (const char* k : {"TMPDIR=", "TMP=", "TEMP=", "CP_SCRATCH_DIR="})
        if (kv.rfind(k, 0) == 0) return true;
      return false;
    });
    if (!policy.tmp_dir.empty())
      for (const char* k : {"TMPDIR=", "TMP=", "TEMP="}) spec.env->push_back(k + policy.tmp_dir.string());
    if (!policy.scratch_dir.empty()) spec.env->push_back("CP_SCRATCH_DIR=" + policy.scratch_dir.string());
  }
  // The store's credentials are the host's: no process a plugin starts sees them (a run that could reach
  // the database could write the queue's log itself).
  if (!spec.env)
    spec.env = environment_without_store_secrets();
  else
    std::erase_if(*spec.env, [](const std::string& kv) { return is_store_secret(kv); });
  os::ProcessOutcome out = os::run_process(spec);
  uint32_t size = res->struct_size;
  *res = cp_spawn_result{};
  res->struct_size = size;
  res->started = out.started ? 1 : 0;
  res->exit_code = out.exit_code;
  res->term_signal = out.term_signal;
  res->timed_out = out.timed_out ? 1 : 0;
  res->cancelled = out.cancelled ? 1 : 0;
  res->duration_ms = static_cast<uint64_t>(out.duration.count());
  if (out.timed_out) return CP_E_TIMEOUT;
  if (out.cancelled) return CP_E_CANCELLED;
  return CP_OK;
}

int svc_is_cancelled(const cp_context* raw) {
  const CallContext* ctx = CallContext::from(raw);
  return ctx && ctx->cancelled() ? 1 : 0;
}

const cp_host_services kServices{sizeof(cp_host_services), &svc_log,   &svc_make_error,
                                 &svc_emit_event,          &svc_spawn, &svc_is_cancelled};

}  // namespace

bool is_store_secret(const std::string& kv) {
  if (kv.rfind("CP_HOST_STORE=", 0) == 0) return true;
  return kv.size() > 3 && kv[0] == 'P' && kv[1] == 'G' && kv[2] >= 'A' && kv[2] <= 'Z';
}

std::vector<std::string> environment_without_store_secrets() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!is_store_secret(*e)) env.emplace_back(*e);
  return env;
}

const char* host_version() {
  return CP_HOST_VERSION;
}

CallContext::CallContext(std::string plugin_id) : plugin_id_(std::move(plugin_id)) {
  raw_.struct_size = sizeof(cp_context);
  raw_.services = &kServices;
  raw_.opaque = this;
}

void CallContext::set_workspace(std::string path) {
  workspace_ = std::move(path);
  raw_.workspace = workspace_.empty() ? nullptr : workspace_.c_str();
}

void CallContext::set_bundle_dir(std::string path) {
  bundle_dir_ = std::move(path);
  raw_.bundle_dir = bundle_dir_.empty() ? nullptr : bundle_dir_.c_str();
}

void CallContext::set_state_dir(std::string path) {
  state_dir_ = std::move(path);
  raw_.state_dir = state_dir_.empty() ? nullptr : state_dir_.c_str();
}

void CallContext::set_shared_state_dir(std::string path) {
  shared_state_dir_ = std::move(path);
  raw_.shared_state_dir = shared_state_dir_.empty() ? nullptr : shared_state_dir_.c_str();
}

const CallContext* CallContext::from(const cp_context* raw) {
  if (!raw || raw->services != &kServices) return nullptr;
  return static_cast<const CallContext*>(raw->opaque);
}

std::string take_error(cp_error* err) {
  if (!err) return {};
  auto* e = reinterpret_cast<HostError*>(err);
  std::string msg = std::move(e->message);
  delete e;
  return msg;
}

int SinkBuffer::write(cp_sink* self, const char* data, size_t len) {
  auto* b = static_cast<SinkBuffer*>(self->opaque);
  if (b->overflowed_ || b->data_.size() + len > b->limit_) {
    b->overflowed_ = true;
    return 1;
  }
  b->data_.append(data, len);
  return 0;
}

}  // namespace cp::plugin
