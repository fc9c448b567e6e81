#include "plugin/instance.hpp"

namespace cp::plugin {
namespace {

cp_create_fn create_fn(const PluginInfo& info) {
  // Every kind's table starts with struct_size, create, destroy: read them through the gate layout.
  return static_cast<const cp_gate_vtable*>(info.vtable)->create;
}
cp_destroy_fn destroy_fn(const PluginInfo& info) {
  return static_cast<const cp_gate_vtable*>(info.vtable)->destroy;
}

}  // namespace

std::unique_ptr<Instance> Instance::create(const PluginInfo& info, std::string& error) {
  CallContext ctx(info.id);
  void* handle = nullptr;
  cp_error* err = nullptr;
  cp_status st = create_fn(info)(ctx.raw(), info.config_json.c_str(), &handle, &err);
  std::string message = take_error(err);
  if (st != CP_OK) {
    error = "create() of plugin '" + info.id + "' failed (status " + std::to_string(st) + ")" +
            (message.empty() ? "" : ": " + message);
    return nullptr;
  }
  return std::unique_ptr<Instance>(new Instance(info, handle));
}

Instance::~Instance() {
  destroy_fn(info_)(handle_);
}

CallOutcome Instance::finish(cp_status st, cp_error* err, SinkBuffer& out) {
  CallOutcome r;
  r.status = st;
  r.error = take_error(err);
  if (out.overflowed()) {
    r.status = CP_E_LIMIT;
    r.error = "plugin output exceeded " + std::to_string(kOutputLimit) + " bytes" +
              (r.error.empty() ? "" : " (" + r.error + ")");
    return r;
  }
  r.output = out.data();
  if (r.status != CP_OK && r.error.empty()) r.error = "plugin returned status " + std::to_string(st);
  return r;
}

CallOutcome Instance::evaluate(CallContext& ctx, const std::string& input_json) {
  if (info_.kind != Kind::gate) return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a gate"};
  std::lock_guard lock(mu_);
  SinkBuffer out(kOutputLimit);
  cp_error* err = nullptr;
  auto* vt = static_cast<const cp_gate_vtable*>(info_.vtable);
  cp_status st = vt->evaluate(handle_, ctx.raw(), input_json.c_str(), out.sink(), &err);
  return finish(st, err, out);
}

CallOutcome Instance::probe(CallContext& ctx) {
  if (info_.kind != Kind::probe) return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a probe"};
  std::lock_guard lock(mu_);
  SinkBuffer out(kOutputLimit);
  cp_error* err = nullptr;
  auto* vt = static_cast<const cp_probe_vtable*>(info_.vtable);
  cp_status st = vt->probe(handle_, ctx.raw(), out.sink(), &err);
  return finish(st, err, out);
}

CallOutcome Instance::plan(CallContext& ctx, const std::string& lane_input_json) {
  if (info_.kind != Kind::retention_lane)
    return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a retention lane"};
  std::lock_guard lock(mu_);
  SinkBuffer out(kOutputLimit);
  cp_error* err = nullptr;
  auto* vt = static_cast<const cp_retention_lane_vtable*>(info_.vtable);
  cp_status st = vt->plan(handle_, ctx.raw(), lane_input_json.c_str(), out.sink(), &err);
  return finish(st, err, out);
}

CallOutcome Instance::propose_plan(CallContext& ctx, const std::string& input_json) {
  if (info_.kind != Kind::planner)
    return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a planner"};
  std::lock_guard lock(mu_);
  SinkBuffer out(kOutputLimit);
  cp_error* err = nullptr;
  auto* vt = static_cast<const cp_planner_vtable*>(info_.vtable);
  cp_status st = vt->plan(handle_, ctx.raw(), input_json.c_str(), out.sink(), &err);
  return finish(st, err, out);
}

CallOutcome Instance::start(CallContext& ctx, const std::string& run_json, void*& run) {
  run = nullptr;
  if (info_.kind != Kind::runner) return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a runner"};
  SinkBuffer none(0);
  cp_error* err = nullptr;
  auto* vt = static_cast<const cp_runner_vtable*>(info_.vtable);
  cp_status st = vt->start(handle_, ctx.raw(), run_json.c_str(), &run, &err);
  CallOutcome r = finish(st, err, none);
  if (!r.ok()) run = nullptr;
  return r;
}

CallOutcome Instance::wait(void* run, uint64_t timeout_ms) {
  SinkBuffer out(kOutputLimit);
  cp_error* err = nullptr;
  auto* vt = static_cast<const cp_runner_vtable*>(info_.vtable);
  cp_status st = vt->wait(handle_, run, timeout_ms, out.sink(), &err);
  if (st == CP_PENDING) {
    take_error(err);
    return {CP_PENDING, "", ""};
  }
  return finish(st, err, out);
}

void Instance::cancel(void* run, bool force) {
  auto* vt = static_cast<const cp_runner_vtable*>(info_.vtable);
  vt->cancel(handle_, run, force ? 1 : 0);
}

void Instance::release(void* run) {
  auto* vt = static_cast<const cp_runner_vtable*>(info_.vtable);
  vt->release(handle_, run);
}

}  // namespace cp::plugin
