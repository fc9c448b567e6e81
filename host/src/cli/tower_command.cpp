// `cp-host tower overview|alerts`: the command tower of `GET /api/command-tower/*` without a server. The
// same aggregate (serve/command_tower.hpp) is built once from the root: every manifest, the queue, the
// capped lanes' sizes; then asked the same questions.
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_client.hpp"
#include "cli/remote_commands.hpp"
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

std::string percent(const json& holder, const char* key) {
  if (!holder.is_object() || !holder.contains(key) || !holder[key].is_number()) return "-";
  std::ostringstream o;
  o.precision(1);
  o << std::fixed << holder[key].get<double>() * 100 << "%";
  return o.str();
}

std::string counts_text(const json& m) {
  std::string out;
  for (const auto& [k, v] : m.items())
    out += (out.empty() ? "" : ", ") + terminal_safe(k) + " " + (v.is_number() ? v.dump() : std::string("?"));
  return out.empty() ? "none" : out;
}

// Printed from the overview, local or a server's: every field read through json_fields.hpp.
void print_tower_overview(const json& o) {
  const json& r = object_of(o, "runs");
  std::cout << "runs        " << number_of(r, "total") << " total, " << number_of(r, "live")
            << " live; by state: " << counts_text(object_of(r, "by_state")) << "\n";
  std::cout << "verdicts    " << counts_text(object_of(r, "by_verdict")) << "\n";
  for (const char* w : {"last_hour", "last_day"}) {
    const json& t = object_of(object_of(o, "throughput"), w);
    std::cout << (std::string(w) == "last_hour" ? "last hour   " : "last day    ") << number_of(t, "finished")
              << " finished, " << number_of(t, "succeeded") << " succeeded (" << percent(t, "success_rate")
              << ")\n";
  }
  const json& d = object_of(o, "duration_ms");
  if (count_of(d, "runs") > 0)
    std::cout << "durations   p50 " << number_of(d, "p50") << " ms, p95 " << number_of(d, "p95")
              << " ms (over " << number_of(d, "runs") << " sealed runs)\n";
  for (const auto& g : array_of(o, "top_failing_gates"))
    std::cout << "gate        " << text_of(g, "gate_id", "-") << ": " << number_of(g, "failures")
              << " failures in " << number_of(g, "results") << " results (newest: run "
              << text_of(g, "last_failed_run", "-") << ")\n";
  const json& q = object_of(o, "queue");
  const json& sla = object_of(q, "sla");
  std::cout << "queue       depth " << number_of(q, "depth") << " (" << number_of(q, "held")
            << " held); SLA at risk " << number_of(sla, "at_risk") << ", breached "
            << number_of(sla, "breached") << "\n";
  const json& a = object_of(o, "approvals");
  std::cout << "approvals   " << number_of(a, "awaiting") << " awaiting";
  const json& nearest = object_of(a, "nearest_deadline");
  if (!nearest.empty())
    std::cout << "; nearest deadline " << text_of(nearest, "deadline", "-") << " (run "
              << text_of(nearest, "run_id", "-") << ")";
  std::cout << "\n";
  const json& disk = object_of(o, "disk");
  for (const auto& l : array_of(disk, "lanes"))
    std::cout << "lane        " << text_of(l, "lane", "-") << ": " << number_of(l, "bytes") << " of "
              << number_of(l, "cap_bytes") << " bytes" << (flag_of(l, "over", false) ? " (over its cap)" : "")
              << "\n";
  if (disk.contains("error"))
    std::cout << "lanes       not measured: " << text_of(disk, "error", "-") << "\n";
}

int severity_rank(const std::string& s) {
  return s == "critical" ? 0 : s == "warning" ? 1 : 2;
}

// The overview or the alerts: built here from the root's files, or asked of the server (--server).
std::optional<json> tower_answer(const Globals& g, const TowerOpts& o, bool alerts, int& code) {
  if (!g.server.empty())
    return remote_get(g, alerts ? "/api/command-tower/alerts" : "/api/command-tower/overview",
                      alerts ? "the alerts" : "the command tower", !o.json, code);
  std::string why;
  auto policy = serve::load_alert_policy(g.root, why);
  if (!policy) {
    std::cerr << "cp-host tower: " << why << "\n";
    code = kUsage;
    return std::nullopt;
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
  return alerts ? tower.alerts(now) : tower.overview(now);
}

int run_tower(const Globals& g, const TowerOpts& o, bool alerts) {
  int code = kOk;
  auto answer = tower_answer(g, o, alerts, code);
  if (!answer) return code;
  if (!alerts) {
    const json& ov = *answer;
    if (o.json)
      std::cout << ov.dump(2) << "\n";
    else
      print_tower_overview(ov);
    return kOk;
  }
  const json& al = *answer;
  const json& alerts_held = array_of(al, "alerts");
  if (o.json) {
    std::cout << al.dump(2) << "\n";
  } else {
    if (alerts_held.empty()) std::cout << "no alerts\n";
    for (const auto& a : alerts_held) {
      std::string sev = text_of(a, "severity", "?");
      for (auto& c : sev) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      std::cout << sev << "\t" << text_of(a, "id", "-") << "\tsince " << text_of(a, "since", "?") << "\n    "
                << text_of(a, "message") << "\n    " << text_of(a, "link") << "\n";
    }
    for (const auto& [rule, n] : object_of(al, "omitted").items())
      std::cout << "(" << (n.is_number() ? n.dump() : "?") << " more " << terminal_safe(rule)
                << " alerts not listed)\n";
  }
  if (!o.fail_on.empty())
    for (const auto& a : alerts_held)
      if (severity_rank(text_of(a, "severity")) <= severity_rank(o.fail_on)) return kInvalid;
  return kOk;
}

int show_sessions(const Globals& g, const TowerOpts& o) {
  const bool remote = !g.server.empty();
  if (o.session.empty()) {
    json all;
    if (remote) {
      int code = kOk;
      auto answer = remote_get(g, "/api/command-tower/sessions", "the sessions", !o.json, code);
      if (!answer) return code;
      all = std::move(*answer);
    } else {
      all = intake::session_summaries(g.root);
    }
    if (o.json) {
      std::cout << all.dump(2) << "\n";
      return kOk;
    }
    for (const auto& s : array_of(all, "sessions")) {
      const json& m = object_of(s, "metrics");
      std::cout << text_of(s, "intake_id") << "  " << text_of(s, "state") << "  chain "
                << text_of(s, "chain_state", "-") << "  " << count_of(s, "runs") << " run(s)  "
                << count_of(m, "duration_ms") << " ms  "
                << count_of(m, "input_tokens") + count_of(m, "output_tokens") << " tokens  "
                << count_of(m, "gate_failures") << " gate failure(s)  " << text_of(s, "request") << "\n";
    }
    if (array_of(all, "sessions").empty()) std::cout << "no sessions\n";
    return kOk;
  }
  std::optional<json> d;
  if (remote) {
    int code = kOk;
    d = remote_get(g, "/api/command-tower/sessions/" + url_encode(o.session), "session " + o.session, !o.json,
                   code);
    if (!d) return code;
  } else {
    d = intake::session_detail(g.root, o.session);
  }
  if (!d) {
    std::cerr << "cp-host tower sessions: no intake session '" << o.session << "'\n";
    return kInvalid;
  }
  if (o.json) {
    std::cout << d->dump(2) << "\n";
    return kOk;
  }
  const json& in = object_of(*d, "intake");
  std::cout << "session  " << text_of(in, "intake_id") << "  " << text_of(in, "state") << "\n"
            << "request  " << text_of(in, "request") << "\n";
  for (const auto& line : array_of(in, "conversation")) {
    std::cout << text_of(line, "at") << "  " << text_of(line, "who") << "  " << text_of(line, "kind");
    for (const auto& q : array_of(line, "questions")) std::cout << "\n    ? " << text_of(q, "text");
    for (const auto& [k, v] : object_of(line, "answers").items())
      std::cout << "\n    " << terminal_safe(k) << ": " << terminal_safe(v.dump());
    std::cout << "\n";
  }
  for (const auto& r : array_of(*d, "runs")) {
    const json& m = object_of(r, "metrics");
    std::cout << "run      " << text_of(r, "run_id") << "  step " << text_of(r, "step_id") << "  "
              << text_of(r, "verdict", text_of(r, "status")) << "  " << count_of(m, "duration_ms") << " ms  "
              << count_of(r, "events_total") << " event(s)\n";
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
