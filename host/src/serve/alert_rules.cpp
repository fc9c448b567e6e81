#include "serve/alert_rules.hpp"

#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/json_locator.hpp"
#include "core/schema_catalog.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::uintmax_t kMaxPolicyBytes = 1u << 20;

json rule_json(const RuleSettings& r) {
  return {{"enabled", r.enabled}, {"severity", r.severity}};
}

void read_rule(const json& rules, const char* name, RuleSettings& r) {
  if (!rules.contains(name)) return;
  const json& j = rules[name];
  r.enabled = j.value("enabled", r.enabled);
  r.severity = j.value("severity", r.severity);
}

void read_number(const json& rules, const char* rule, const char* field, long long& v) {
  if (rules.contains(rule) && rules[rule].contains(field)) v = rules[rule][field].get<long long>();
}

// "45 s", "12 min", "3 h": how long, for a message.
std::string duration_text(int64_t ms) {
  int64_t s = std::max<int64_t>(ms, 0) / 1000;
  if (s < 120) return std::to_string(s) + " s";
  if (s < 2 * 3600) return std::to_string(s / 60) + " min";
  if (s < 2 * 86400) return std::to_string(s / 3600) + " h";
  return std::to_string(s / 86400) + " d";
}

std::string bytes_text(uint64_t b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int i = 0;
  while (v >= 1024 && i < 4) v /= 1024, ++i;
  std::ostringstream o;
  o.precision(i == 0 ? 0 : 1);
  o << std::fixed << v << " " << unit[i];
  return o.str();
}

int severity_rank(const std::string& s) {
  return s == "critical" ? 0 : s == "warning" ? 1 : 2;
}

void sla_alerts(const AlertPolicy& p, const QueueStats& q, std::vector<Alert>& out) {
  for (const auto& it : q.sla) {
    const bool breached = it.sla_state == "breached";
    const RuleSettings& r = breached ? p.sla_breached : p.sla_at_risk;
    if (!r.enabled) continue;
    Alert a;
    a.rule = breached ? "sla_breached" : "sla_at_risk";
    a.id = a.rule + ":" + it.item_id;
    a.severity = r.severity;
    a.since_ms = it.since_ms;
    const std::string bound = it.bound + " " + (it.bound == "start_by" ? it.start_by : it.deadline);
    a.message = "queue item " + it.item_id + " (task " + it.task_id + ", " + it.state + ") " +
                (breached ? "is past its " + bound
                          : "may miss its " + bound +
                                (it.bound == "deadline" ? ": the time left is less than its timeout"
                                                        : ": under a quarter of its wait is left"));
    a.link = "/api/queue/" + it.item_id;
    a.subject = {{"item_id", it.item_id}, {"task_id", it.task_id}, {"state", it.state}};
    if (!it.deadline.empty()) a.subject["deadline"] = it.deadline;
    if (!it.start_by.empty()) a.subject["start_by"] = it.start_by;
    out.push_back(std::move(a));
  }
}

void stuck_alerts(const AlertPolicy& p, const RunStats& runs, int64_t now, std::vector<Alert>& out) {
  if (!p.stuck_run.enabled) return;
  const int64_t quiet = p.stuck_after_sec * 1000;
  for (const auto& r : runs.quiet_runs(now - quiet)) {
    Alert a;
    a.rule = "stuck_run";
    a.id = a.rule + ":" + r.run_id;
    a.severity = p.stuck_run.severity;
    a.since_ms = r.last_event_ms + quiet;
    a.message = "run " + r.run_id + " (task " + r.task_id + ", " + r.status + ") has written no event for " +
                duration_text(now - r.last_event_ms) + " (since " + core::iso_from_ms(r.last_event_ms) + ")";
    a.link = "/api/runs/" + r.run_id;
    a.subject = {{"run_id", r.run_id},
                 {"task_id", r.task_id},
                 {"status", r.status},
                 {"last_event_at", core::iso_from_ms(r.last_event_ms)}};
    out.push_back(std::move(a));
  }
}

void gate_alerts(const AlertPolicy& p, const RunStats& runs, int64_t now, std::vector<Alert>& out) {
  if (!p.gate_failing.enabled) return;
  for (const auto& g :
       runs.failing_gates(p.gate_in_a_row, p.gate_in_window, now - p.gate_window_sec * 1000)) {
    Alert a;
    a.rule = "gate_failing";
    a.id = a.rule + ":" + g.gate_id;
    a.severity = p.gate_failing.severity;
    a.since_ms = g.since_ms;
    const bool streak = p.gate_in_a_row > 0 && g.in_a_row >= p.gate_in_a_row;
    a.message = "gate " + g.gate_id + " " +
                (streak ? "failed the last " + std::to_string(g.in_a_row) + " runs in a row"
                        : "failed " + std::to_string(g.in_window) + " times within " +
                              duration_text(p.gate_window_sec * 1000)) +
                " (newest: run " + g.last_failed_run + ")";
    a.link = "/api/runs/" + g.last_failed_run;
    a.subject = {{"gate_id", g.gate_id},
                 {"in_a_row", g.in_a_row},
                 {"in_window", g.in_window},
                 {"last_failed_run", g.last_failed_run},
                 {"last_failure_at", core::iso_from_ms(g.last_failure_ms)}};
    out.push_back(std::move(a));
  }
}

void retry_alerts(const AlertPolicy& p, const QueueStats& q, int64_t now, std::vector<Alert>& out) {
  if (!p.retry_storm.enabled || p.retry_count <= 0) return;
  auto from = std::lower_bound(q.retries.begin(), q.retries.end(),
                               std::pair<int64_t, std::string>(now - p.retry_window_sec * 1000, ""));
  const auto n = std::distance(from, q.retries.end());
  if (n < p.retry_count) return;
  std::set<std::string> items;
  for (auto it = from; it != q.retries.end(); ++it) items.insert(it->second);
  Alert a;
  a.rule = "retry_storm";
  a.id = a.rule;
  a.severity = p.retry_storm.severity;
  a.since_ms = std::next(from, static_cast<std::ptrdiff_t>(p.retry_count - 1))->first;
  a.message = std::to_string(n) + " retries of " + std::to_string(items.size()) + " queue item(s) within " +
              duration_text(p.retry_window_sec * 1000) + " (threshold " + std::to_string(p.retry_count) + ")";
  a.link = "/api/queue";
  json ids = json::array();
  for (const auto& id : items) {
    if (ids.size() == 20) break;
    ids.push_back(id);
  }
  a.subject = {{"retries", n}, {"items", items.size()}, {"item_ids", ids}};
  out.push_back(std::move(a));
}

void approval_alerts(const AlertPolicy& p, const RunStats& runs, int64_t now, std::vector<Alert>& out) {
  if (!p.approval_deadline.enabled) return;
  const int64_t within = p.approval_within_sec * 1000;
  for (const auto& r : runs.awaiting_by_deadline(now + within, 1000)) {
    Alert a;
    a.rule = "approval_deadline";
    a.id = a.rule + ":" + r.run_id;
    a.severity = p.approval_deadline.severity;
    int64_t requested = r.requested_at.empty() ? -1 : core::parse_iso_ms(r.requested_at);
    a.since_ms = std::max(r.deadline_ms - within, requested);
    a.message = "run " + r.run_id + " (task " + r.task_id + ") awaits a decision; its deadline " +
                r.deadline +
                (r.deadline_ms > now ? " is in " + duration_text(r.deadline_ms - now)
                                     : " has passed (it is denied at the next tick)");
    a.link = "/api/runs/" + r.run_id;
    a.subject = {{"run_id", r.run_id}, {"task_id", r.task_id}, {"deadline", r.deadline}};
    if (!r.requested_at.empty()) a.subject["requested_at"] = r.requested_at;
    out.push_back(std::move(a));
  }
}

void retention_alerts(const AlertPolicy& p, const DiskState& d, std::vector<Alert>& out) {
  if (!p.retention_over_cap.enabled) return;
  for (const auto& l : d.lanes) {
    if (!l.over()) continue;
    Alert a;
    a.rule = "retention_over_cap";
    a.id = a.rule + ":" + l.lane;
    a.severity = p.retention_over_cap.severity;
    auto since = d.over_since.find(l.lane);
    a.since_ms = since != d.over_since.end() ? since->second : d.measured_ms;
    a.message = "retention lane " + l.lane + " holds " + bytes_text(l.bytes) + ", over its cap of " +
                bytes_text(l.cap_bytes) +
                " (policies/retention_policy.json); `cp-host retention plan` shows what may go";
    a.link = "/api/command-tower/overview";
    a.subject = {{"lane", l.lane},
                 {"bytes", l.bytes},
                 {"cap_bytes", l.cap_bytes},
                 {"measured_at", core::iso_from_ms(d.measured_ms)}};
    out.push_back(std::move(a));
  }
}

void circuit_alerts(const AlertPolicy& p, const std::vector<plugin::OpenCircuit>& circuits,
                    std::vector<Alert>& out) {
  if (!p.plugin_circuit_open.enabled) return;
  for (const auto& c : circuits) {
    Alert a;
    a.rule = "plugin_circuit_open";
    a.id = a.rule + ":" + c.plugin_id;
    a.severity = p.plugin_circuit_open.severity;
    a.since_ms = c.opened_ms;
    a.message = "plugin " + c.plugin_id + ": its isolated worker failed " + std::to_string(c.failures) +
                " times in a row, so its calls in this server fail at once until the server restarts";
    a.link = "/api/plugins";
    a.subject = {{"plugin_id", c.plugin_id}, {"library", c.library.string()}, {"failures", c.failures}};
    out.push_back(std::move(a));
  }
}

}  // namespace

json to_json(const AlertPolicy& p) {
  json r = json::object();
  r["sla_breached"] = rule_json(p.sla_breached);
  r["sla_at_risk"] = rule_json(p.sla_at_risk);
  r["stuck_run"] = rule_json(p.stuck_run);
  r["stuck_run"]["no_event_for_sec"] = p.stuck_after_sec;
  r["gate_failing"] = rule_json(p.gate_failing);
  r["gate_failing"]["in_a_row"] = p.gate_in_a_row;
  r["gate_failing"]["in_window"] = p.gate_in_window;
  r["gate_failing"]["window_sec"] = p.gate_window_sec;
  r["retry_storm"] = rule_json(p.retry_storm);
  r["retry_storm"]["retries"] = p.retry_count;
  r["retry_storm"]["window_sec"] = p.retry_window_sec;
  r["approval_deadline"] = rule_json(p.approval_deadline);
  r["approval_deadline"]["within_sec"] = p.approval_within_sec;
  r["retention_over_cap"] = rule_json(p.retention_over_cap);
  r["retention_over_cap"]["check_every_sec"] = p.retention_check_every_sec;
  r["plugin_circuit_open"] = rule_json(p.plugin_circuit_open);
  return {{"policy", "alerts"}, {"version", 1}, {"rules", r}};
}

AlertPolicy alert_policy_from(const json& doc) {
  AlertPolicy p;
  const json rules = doc.is_object() ? doc.value("rules", json::object()) : json::object();
  read_rule(rules, "sla_breached", p.sla_breached);
  read_rule(rules, "sla_at_risk", p.sla_at_risk);
  read_rule(rules, "stuck_run", p.stuck_run);
  read_number(rules, "stuck_run", "no_event_for_sec", p.stuck_after_sec);
  read_rule(rules, "gate_failing", p.gate_failing);
  read_number(rules, "gate_failing", "in_a_row", p.gate_in_a_row);
  read_number(rules, "gate_failing", "in_window", p.gate_in_window);
  read_number(rules, "gate_failing", "window_sec", p.gate_window_sec);
  read_rule(rules, "retry_storm", p.retry_storm);
  read_number(rules, "retry_storm", "retries", p.retry_count);
  read_number(rules, "retry_storm", "window_sec", p.retry_window_sec);
  read_rule(rules, "approval_deadline", p.approval_deadline);
  read_number(rules, "approval_deadline", "within_sec", p.approval_within_sec);
  read_rule(rules, "retention_over_cap", p.retention_over_cap);
  read_number(rules, "retention_over_cap", "check_every_sec", p.retention_check_every_sec);
  read_rule(rules, "plugin_circuit_open", p.plugin_circuit_open);
  return p;
}

std::optional<AlertPolicy> load_alert_policy(const fs::path& root, std::string& error) {
  const fs::path file = root / "policies" / "alerts.json";
  const std::string name = "policies/alerts.json";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec))) return AlertPolicy{};
  if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) > kMaxPolicyBytes) {
    error = name + ": not a regular file of at most 1 MiB";
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json doc = core::json_depth_ok(text) ? json::parse(text, nullptr, false) : json();
  if (doc.is_discarded() || doc.is_null()) {
    error = name + ": not JSON (or nested too deep); see schemas/alerts.schema.json";
    return std::nullopt;
  }
  auto v = core::schema("alerts").validate(doc);
  if (!v.empty()) {
    const auto& first = v.front();
    const std::string pointer = first.pointer.empty() ? "/" : first.pointer;
    error = name + ":" + std::to_string(core::line_of_pointer(text, first.pointer)) + ": " + pointer + ": " +
            first.message + (first.expected.empty() ? "" : " (expected " + first.expected + ")") +
            "; see schemas/alerts.schema.json";
    return std::nullopt;
  }
  return alert_policy_from(doc);
}

std::vector<Alert> evaluate_alerts(const AlertPolicy& p, const AlertInputs& in, int64_t now_ms) {
  std::vector<Alert> out;
  sla_alerts(p, in.queue, out);
  stuck_alerts(p, in.runs, now_ms, out);
  gate_alerts(p, in.runs, now_ms, out);
  retry_alerts(p, in.queue, now_ms, out);
  approval_alerts(p, in.runs, now_ms, out);
  retention_alerts(p, in.disk, out);
  circuit_alerts(p, in.circuits, out);
  std::sort(out.begin(), out.end(), [](const Alert& a, const Alert& b) {
    int ra = severity_rank(a.severity), rb = severity_rank(b.severity);
    if (ra != rb) return ra < rb;
    return a.since_ms != b.since_ms ? a.since_ms < b.since_ms : a.id < b.id;
  });
  return out;
}

json to_json(Alert&& a) {
  json j = json::object();
  j["id"] = std::move(a.id);
  j["rule"] = std::move(a.rule);
  j["severity"] = std::move(a.severity);
  j["since"] = a.since_ms >= 0 ? json(core::iso_from_ms(a.since_ms)) : json(nullptr);
  j["message"] = std::move(a.message);
  j["link"] = std::move(a.link);
  j["subject"] = std::move(a.subject);
  return j;
}

}  // namespace cp::serve
