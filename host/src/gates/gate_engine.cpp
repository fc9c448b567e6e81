#include "gates/gate_engine.hpp"
#include "core/clock.hpp"

#include "core/json_schema.hpp"
#include "gates/verdict.hpp"
#include "log/logger.hpp"
#include "plugin/instance.hpp"
#include "plugin/isolated_plugin.hpp"
#include "plugin/registry.hpp"
#include "store/bundle.hpp"
#include "store/event_check.hpp"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace cp::gates {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// One gate call on its own thread, so the host can stop waiting for a gate that hangs. Everything the
// call touches lives here, shared with the thread: if the gate never returns, the thread keeps the state
// alive and the host moves on (the in-process limit; out-of-process gates can be killed instead).
struct GateCall {
  // Events reach the bundle only while the host still waits for this call: an abandoned gate's thread
  // outlives the run, and must never touch a bundle that is gone.
  struct SinkGuard {
    std::mutex mu;
    bool open = true;
  };
  std::shared_ptr<SinkGuard> guard = std::make_shared<SinkGuard>();
  std::unique_ptr<plugin::Instance> instance;
  std::unique_ptr<plugin::CallContext> ctx;
  std::atomic<bool> stop{false};
  std::string input;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  plugin::CallOutcome outcome;
};

json evaluate_with_deadline(std::shared_ptr<GateCall> call, const GateRunOptions& opt,
                            std::chrono::milliseconds timeout) {
  std::thread([call] {
    plugin::CallOutcome out;
    try {
      out = call->instance->evaluate(*call->ctx, call->input);
    } catch (const std::exception& e) {
      out = {CP_E_FAILED, "", std::string("gate threw: ") + e.what()};
    }
    std::lock_guard lock(call->mu);
    call->outcome = std::move(out);
    call->done = true;
    call->cv.notify_all();
  }).detach();

  auto deadline = Clock::now() + timeout;
  std::unique_lock lock(call->mu);
  bool cancelled = false;
  while (!call->done) {
    if (!cancelled && opt.cancel && opt.cancel->load()) {
      cancelled = true;
      call->stop = true;
      deadline = std::min(deadline, Clock::now() + std::chrono::seconds(10));
    }
    if (Clock::now() >= deadline) {
      call->stop = true;
      // Give its spawned processes the kill and the gate a moment to notice.
      if (call->cv.wait_for(lock, std::chrono::seconds(5), [&] { return call->done; })) break;
      {
        std::lock_guard closed(call->guard->mu);
        call->guard->open = false;  // from here the abandoned thread's events are refused
      }
      return error_verdict(
          cancelled
              ? "gate stopped: the run was cancelled"
              : "gate did not finish within " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s");
    }
    call->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return call->done; });
  }
  if (cancelled && call->outcome.ok()) {
    json doc = verdict_from(call->outcome);
    if (doc.value("verdict", "") == "pass")
      return error_verdict("gate interrupted: the run was cancelled while it ran");
    return doc;
  }
  return verdict_from(call->outcome);
}

}  // namespace

std::vector<GateResult> run_gates(const plugin::Registry& registry, const std::vector<GateSpec>& gates,
                                  const GateRunOptions& opt, store::Bundle& bundle) {
  std::vector<GateResult> results;
  std::string workspace = opt.input.value("workspace", "");
  for (const auto& spec : gates) {
    GateResult r;
    r.gate_id = spec.plugin;
    r.required = spec.required;
    if (std::find(opt.skip.begin(), opt.skip.end(), spec.plugin) != opt.skip.end()) {
      r.verdict = "skipped";
      r.summary = opt.skip_reason;
      bundle.events().append("GATE_SKIPPED",
                             {{"gate_id", r.gate_id}, {"required", r.required}, {"reason", r.summary}});
      results.push_back(std::move(r));
      continue;
    }
    auto started = Clock::now();
    std::string started_at = core::now_utc_iso();
    json doc;
    std::string plugin_version;
    bool isolated = false;
    auto deadline = spec.timeout.count() > 0 ? spec.timeout : opt.gate_timeout;
    const plugin::PluginInfo* info = registry.find(spec.plugin);
    if (!info || info->kind != plugin::Kind::gate) {
      doc = error_verdict("no gate plugin '" + spec.plugin + "' is loaded (check --plugins and the pack)");
    } else {
      plugin_version = info->version;
      plugin::PluginInfo effective = *info;
      std::string problem;
      if (!spec.config.is_null()) {
        try {
          auto schema = core::JsonSchema::compile(json::parse(info->config_schema));
          auto v = schema.validate(spec.config);
          if (!v.empty())
            problem = "pack config of gate '" + spec.plugin + "' breaks the plugin's schema at " +
                      (v[0].pointer.empty() ? "/" : v[0].pointer) + ": " + v[0].message;
          effective.config_json = spec.config.dump();
        } catch (const std::exception& e) {
          problem = std::string("cannot check the gate's config: ") + e.what();
        }
      }
      if (!problem.empty()) {
        doc = error_verdict(problem);
      } else if (effective.isolation == "isolated") {
        // Served by cp-plugin-worker: a crash, hang or flood there is an error verdict here, nothing more.
        isolated = true;
        plugin::IsolatedPlugin worker(effective, effective.limits);
        plugin::CallContext ctx(spec.plugin);
        ctx.set_run_id(opt.input.value("run_id", ""));
        ctx.set_confinement(opt.confinement);
        ctx.set_workspace(workspace);
        ctx.set_bundle_dir(bundle.dir().string());
        ctx.set_event_sink(store::plugin_event_sink(bundle));
        doc = verdict_from(worker.evaluate(ctx, opt.input.dump(), deadline));
      } else {
        auto call = std::make_shared<GateCall>();
        std::string error;
        call->instance = plugin::Instance::create(effective, error);
        if (!call->instance) {
          doc = error_verdict(error);
        } else {
          call->ctx = std::make_unique<plugin::CallContext>(spec.plugin);
          call->ctx->set_run_id(opt.input.value("run_id", ""));
          call->ctx->set_confinement(opt.confinement);
          call->ctx->set_workspace(workspace);
          call->ctx->set_bundle_dir(bundle.dir().string());
          call->ctx->set_cancel_flag(&call->stop);
          call->ctx->set_event_sink([guard = call->guard, sink = store::plugin_event_sink(bundle)](
                                        const std::string& type, const std::string& payload) {
            std::lock_guard lock(guard->mu);
            return guard->open && sink(type, payload);
          });
          call->input = opt.input.dump();
          doc = evaluate_with_deadline(call, opt, deadline);
        }
      }
    }
    doc["isolation"] = isolated ? "isolated" : "in_process";
    std::string plugin_verdict = doc.value("verdict", "error");
    r.verdict = plugin_verdict;
    if (!spec.required && plugin_verdict == "fail") r.verdict = "warn";
    r.summary = doc.value("summary", "");
    doc["gate_id"] = r.gate_id;
    if (!plugin_version.empty()) doc["plugin_version"] = plugin_version;
    doc["required"] = r.required;
    doc["started_at"] = started_at;
    doc["duration_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    if (r.verdict != plugin_verdict) doc["effective_verdict"] = r.verdict;
    r.report = "reports/gate_" + r.gate_id + ".json";
    bundle.write_json(r.report, doc);
    r.document = doc;
    std::string type = r.verdict == "pass"   ? "GATE_PASSED"
                       : r.verdict == "fail" ? "GATE_FAILED"
                       : r.verdict == "warn" ? "GATE_WARNED"
                                             : "GATE_ERRORED";
    bundle.events().append(type, {{"gate_id", r.gate_id},
                                  {"required", r.required},
                                  {"verdict", r.verdict},
                                  {"summary", r.summary},
                                  {"report", r.report}});
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace cp::gates
