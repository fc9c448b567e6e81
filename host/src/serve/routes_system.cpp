// The server itself: health, version, the OpenAPI document, the loaded plugins, Prometheus metrics, and
// the nodes serving the queue.
#include "plugin/registry.hpp"
#include "queue/queue_service.hpp"
#include "serve/api_answers.hpp"
#include "serve/metrics.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"
#include "serve/scheduler.hpp"

#include <cortexpilot/plugin.h>

#include <sstream>

namespace cp::serve {

using nlohmann::json;

namespace {

ApiResponse health(const ApiServices& s, const RouteCall&) {
  auto counts = s.queue.counts();
  return ok_json({{"status", "ok"},
                  {"runs_indexed", s.runs.size()},
                  {"queue", counts},
                  {"scheduler", s.scheduler ? "on" : "off"}});
}

// Every node of the queue (workers and API-only nodes) with its last heartbeat, whichever node is asked.
ApiResponse workers(const ApiServices& s, const RouteCall&) {
  if (!s.cfg.workers) return ok_json({{"workers", json::array()}, {"count", 0}});
  json w = s.cfg.workers();
  return ok_json({{"workers", w}, {"count", w.size()}});
}

ApiResponse version(const ApiServices& s, const RouteCall&) {
  return ok_json(
      {{"version", s.cfg.version},
       {"plugin_abi", std::to_string(CP_PLUGIN_ABI_MAJOR) + "." + std::to_string(CP_PLUGIN_ABI_MINOR)},
       {"api", "1"}});
}

ApiResponse openapi(const ApiServices& s, const RouteCall&) {
  ApiResponse r;
  r.body = s.cfg.openapi;
  return r;
}

// The plugins loaded and those refused, with why (as `cp-host plugins list --json`; a refused library is
// named by its file name only, as a loaded one is, so the answer holds no path of the host).
ApiResponse plugins(const ApiServices& s, const RouteCall&) {
  json out{{"plugins", json::array()}, {"refused", json::array()}};
  if (s.registry) {
    for (const auto& p : s.registry->plugins()) out["plugins"].push_back(plugin::to_json(p, false));
    for (const auto& r : s.registry->refusals())
      out["refused"].push_back({{"library", r.file.filename().string()}, {"id", r.id}, {"reason", r.reason}});
  }
  return ok_json(out);
}

void run_metrics(const ApiServices& s, std::ostringstream& o) {
  o << "# HELP cp_runs Runs in the runtime root by status (sealed runs by verdict).\n# TYPE cp_runs "
       "gauge\n";
  for (const auto& [st, n] : s.runs.count_by_status())
    o << "cp_runs{status=\"" << prom_label(st) << "\"} " << n << "\n";
  o << "# HELP cp_gate_outcomes Gate verdicts over the runs in the root.\n# TYPE cp_gate_outcomes gauge\n";
  for (const auto& [g, vs] : s.runs.gate_outcomes())
    for (const auto& [v, n] : vs)
      o << "cp_gate_outcomes{gate=\"" << prom_label(g) << "\",verdict=\"" << prom_label(v) << "\"} " << n
        << "\n";
}

void queue_metrics(const ApiServices& s, std::ostringstream& o) {
  json counts = s.queue.counts();
  o << "# HELP cp_queue_items Queue items by state.\n# TYPE cp_queue_items gauge\n";
  for (const char* st : {"queued", "claimed", "running", "done", "cancelled"})
    o << "cp_queue_items{state=\"" << st << "\"} " << counts.value(st, 0) << "\n";
  o << "# HELP cp_queue_depth Items waiting to run.\n# TYPE cp_queue_depth gauge\ncp_queue_depth "
    << counts.value("queued", 0) << "\n";
  if (s.scheduler) {
    auto st = s.scheduler->stats();
    o << "# HELP cp_scheduler_running Runs the scheduler has started and not yet reaped.\n"
      << "# TYPE cp_scheduler_running gauge\ncp_scheduler_running " << st.running << "\n"
      << "# TYPE cp_scheduler_started_total counter\ncp_scheduler_started_total " << st.started_total << "\n"
      << "# TYPE cp_scheduler_finished_total counter\ncp_scheduler_finished_total " << st.finished_total
      << "\n";
  }
}

ApiResponse metrics(const ApiServices& s, const RouteCall&) {
  std::ostringstream o;
  run_metrics(s, o);
  queue_metrics(s, o);
  o << s.metrics.render_requests();
  ApiResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = o.str();
  return r;
}

}  // namespace

std::vector<Route> system_routes() {
  return {
      {{"GET", "/api/health", Role::none}, health},        {{"GET", "/api/version", Role::viewer}, version},
      {{"GET", "/api/openapi.json", Role::none}, openapi}, {{"GET", "/api/plugins", Role::viewer}, plugins},
      {{"GET", "/metrics", Role::viewer}, metrics},        {{"GET", "/api/workers", Role::viewer}, workers},
  };
}

}  // namespace cp::serve
