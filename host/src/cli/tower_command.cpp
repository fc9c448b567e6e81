// `cp-host tower overview|alerts`: the command tower of `GET /api/command-tower/*` without a server. The
// same aggregate (serve/command_tower.hpp) is built once from the root: every manifest, the queue, the
// capped lanes' sizes; then asked the same questions.
#include "cli/commands.hpp"
#include "core/clock.hpp"
#include "intake/session_view.hpp"
#include "queue/queue_backend.hpp"
#include "serve/command_tower.hpp"
#include "serve/run_catalog.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cctype>
#include <iostream>
#include <sstream>

namespace cp::cli {

using nlohmann::json;

namespace {

struct TowerOpts {
  bool json = false;
  std::string fail_on;  // alerts: exit 1 when an alert this severe or worse holds
  std::string session;  // sessions: the one to show
};

std::string percent(const json& rate) {
  if (rate.is_null()) return "-";
  std::ostringstream o;
  o.precision(1);
  o << std::fixed << rate.get<double>() * 100 << "%";
  return o.str();
}

std::string counts_text(const json& m) {
  std::string out;
  for (const auto& [k, v] : m.items())
    out += (out.empty() ? "" : ", ") + k + " " + std::to_string(v.get<long long>());
  return out.empty() ? "none" : out;
}

void print_tower_overview(const json& o) {
  const json& r = o["runs"];
  std::cout << "runs        " << r["total"] << " total, " << r["live"]
            << " live; by state: " << counts_text(r["by_state"]) << "\n";
  std::cout << "verdicts    " << counts_text(r["by_verdict"]) << "\n";
  for (const char* w : {"last_hour", "last_day"}) {
    const json& t = o["throughput"][w];
    std::cout << (std::string(w) == "last_hour" ? "last hour   " : "last day    ") << t["finished"]
              << " finished, " << t["succeeded"] << " succeeded (" << percent(t["success_rate"]) << ")\n";
  }
  const json& d = o["duration_ms"];
  if (d["runs"].get<long long>() > 0)
    std::cout << "durations   p50 " << d["p50"] << " ms, p95 " << d["p95"] << " ms (over " << d["runs"]
              << " sealed runs)\n";
  for (const auto& g : o["top_failing_gates"])
    std::cout << "gate        " << g["gate_id"].get<std::string>() << ": " << g["failures"] << " failures in "
              << g["results"] << " results (newest: run " << g["last_failed_run"].get<std::string>() << ")\n";
  const json& q = o["queue"];
  std::cout << "queue       depth " << q["depth"] << " (" << q["held"] << " held); SLA at risk "
            << q["sla"]["at_risk"] << ", breached " << q["sla"]["breached"] << "\n";
  const json& a = o["approvals"];
  std::cout << "approvals   " << a["awaiting"] << " awaiting";
  if (!a["nearest_deadline"].is_null())
    std::cout << "; nearest deadline " << a["nearest_deadline"]["deadline"].get<std::string>() << " (run "
              << a["nearest_deadline"]["run_id"].get<std::string>() << ")";
  std::cout << "\n";
  for (const auto& l : o["disk"]["lanes"])
    std::cout << "lane        " << l["lane"].get<std::string>() << ": " << l["bytes"] << " of "
              << l["cap_bytes"] << " bytes" << (l["over"].get<bool>() ? " (over its cap)" : "") << "\n";
  if (o["disk"].contains("error"))
    std::cout << "lanes       not measured: " << o["disk"]["error"].get<std::string>() << "\n";
}

int severity_rank(const std::string& s) {
  return s == "critical" ? 0 : s == "warning" ? 1 : 2;
}

int run_tower(const Globals& g, const TowerOpts& o, bool alerts) {
  std::string why;
  auto policy = serve::load_alert_policy(g.root, why);
  if (!policy) {
    std::cerr << "cp-host tower: " << why << "\n";
    return kUsage;
  }
  serve::RunCatalog catalog(g.root);
  catalog.refresh();
  serve::CommandTower tower(g.root, catalog.stats(), *policy);
  const int64_t now = core::now_ms();
  queue::BackendOptions bo;
  bo.root = g.root;
  bo.create = false;  // a read creates no queue
  if (auto backend = queue::open_queue_backend(bo)) tower.refresh_queue(*backend, now);
  tower.measure_disk(now);
  if (!alerts) {
    json ov = tower.overview(now);
    if (o.json)
      std::cout << ov.dump(2) << "\n";
    else
      print_tower_overview(ov);
    return kOk;
  }
  json al = tower.alerts(now);
  if (o.json) {
    std::cout << al.dump(2) << "\n";
  } else {
    if (al["alerts"].empty()) std::cout << "no alerts\n";
    for (const auto& a : al["alerts"]) {
      std::string sev = a["severity"];
      for (auto& c : sev) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      std::cout << sev << "\t" << a["id"].get<std::string>() << "\tsince "
                << (a["since"].is_null() ? std::string("?") : a["since"].get<std::string>()) << "\n    "
                << a["message"].get<std::string>() << "\n    " << a["link"].get<std::string>() << "\n";
    }
    for (const auto& [rule, n] : al["omitted"].items())
      std::cout << "(" << n << " more " << rule << " alerts not listed)\n";
  }
  if (!o.fail_on.empty())
    for (const auto& a : al["alerts"])
      if (severity_rank(a["severity"].get<std::string>()) <= severity_rank(o.fail_on)) return kInvalid;
  return kOk;
}

int show_sessions(const Globals& g, const TowerOpts& o) {
  if (o.session.empty()) {
    json all = intake::session_summaries(g.root);
    if (o.json) {
      std::cout << all.dump(2) << "\n";
      return kOk;
    }
    for (const auto& s : all["sessions"]) {
      const json& m = s["metrics"];
      std::cout << s.value("intake_id", "") << "  " << s.value("state", "") << "  chain "
                << (s["chain_state"].is_string() ? s["chain_state"].get<std::string>() : std::string("-"))
                << "  " << s.value("runs", 0) << " run(s)  " << m.value("duration_ms", 0LL) << " ms  "
                << m.value("input_tokens", 0LL) + m.value("output_tokens", 0LL) << " tokens  "
                << m.value("gate_failures", 0) << " gate failure(s)  " << s.value("request", "") << "\n";
    }
    if (all["sessions"].empty()) std::cout << "no sessions\n";
    return kOk;
  }
  auto d = intake::session_detail(g.root, o.session);
  if (!d) {
    std::cerr << "cp-host tower sessions: no intake session '" << o.session << "'\n";
    return kInvalid;
  }
  if (o.json) {
    std::cout << d->dump(2) << "\n";
    return kOk;
  }
  const json& in = (*d)["intake"];
  std::cout << "session  " << in.value("intake_id", "") << "  " << in.value("state", "") << "\n"
            << "request  " << in.value("request", "") << "\n";
  for (const auto& line : in["conversation"]) {
    std::cout << line.value("at", "") << "  " << line.value("who", "") << "  " << line.value("kind", "");
    if (line.contains("questions"))
      for (const auto& q : line["questions"]) std::cout << "\n    ? " << q.value("text", "");
    if (line.contains("answers"))
      for (const auto& [k, v] : line["answers"].items()) std::cout << "\n    " << k << ": " << v.dump();
    std::cout << "\n";
  }
  for (const auto& r : (*d)["runs"]) {
    const json& m = r["metrics"];
    std::cout << "run      " << r.value("run_id", "") << "  step " << r.value("step_id", "") << "  "
              << (r["verdict"].is_string() ? r["verdict"].get<std::string>() : r.value("status", "")) << "  "
              << m.value("duration_ms", 0LL) << " ms  " << r.value("events_total", 0) << " event(s)\n";
  }
  return kOk;
}

}  // namespace

void add_tower(CLI::App& app, Globals& g, Runner& run) {
  auto o = std::make_shared<TowerOpts>();
  auto* tower = app.add_subcommand(
      "tower",
      "The command tower without a server: what GET /api/command-tower/overview and /alerts answer, built "
      "once "
      "from the root's manifests, its queue and its capped retention lanes (thresholds: "
      "policies/alerts.json). "
      "A plugin circuit breaker lives in the process that calls the plugin, so only a server's alerts can "
      "show one. Exit codes: 0 answered, 1 an alert at --fail-on severity or worse holds, 2 "
      "policies/alerts.json "
      "is invalid (the JSON pointer is named).");
  tower->require_subcommand(1);
  auto* ov = tower->add_subcommand(
      "overview",
      "Runs by state and verdict, throughput and success rate over the last hour and day, duration "
      "p50/p95, the most failing gates, queue depth and SLA counts, awaiting approvals, lane sizes");
  ov->add_flag("--json", o->json, "Print the overview as GET /api/command-tower/overview answers it");
  ov->callback([&g, &run, o] { run = [&g, o] { return run_tower(g, *o, false); }; });
  auto* al = tower->add_subcommand(
      "alerts",
      "The alerts that hold now, most severe first: SLA breached or at risk, stuck runs, a gate failing "
      "repeatedly, a retry storm, an approval deadline close, a lane over its retention cap");
  al->add_flag("--json", o->json, "Print the alerts as GET /api/command-tower/alerts answers them");
  al->add_option("--fail-on", o->fail_on,
                 "Exit 1 when an alert of this severity or worse holds (for cron and CI)")
      ->check(CLI::IsMember({"info", "warning", "critical"}));
  al->callback([&g, &run, o] { run = [&g, o] { return run_tower(g, *o, true); }; });
  auto* se = tower->add_subcommand(
      "sessions",
      "The sessions: each intake with its chain's state, its runs and their metrics (duration, tokens, cost, "
      "gate failures); with an ID, that session's conversation, steps, and every run's events. Exit 0, 1 no "
      "such session");
  se->add_option("intake", o->session, "An intake id: show that session");
  se->add_flag("--json", o->json, "Print what GET /api/command-tower/sessions[/{id}] answers");
  se->callback([&g, &run, o] { run = [&g, o] { return show_sessions(g, *o); }; });
}

}  // namespace cp::cli
