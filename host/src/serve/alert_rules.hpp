// The command tower's alert rules and their thresholds (policies/alerts.json, schemas/alerts.schema.json),
// judged over state the server keeps up to date (RunStats, QueueStats, the lanes' measured sizes, the plugin
// breaker of this process). Evaluating them reads no file: it is a walk over a few small sets.
#pragma once

#include "plugin/isolated_plugin.hpp"
#include "retention/lane_usage.hpp"
#include "serve/queue_stats.hpp"
#include "serve/run_stats.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cp::serve {

struct RuleSettings {
  bool enabled = true;
  std::string severity;  // info | warning | critical
};

// Every rule and threshold; the defaults are those of the shipped policies/alerts.json.
struct AlertPolicy {
  RuleSettings sla_breached{true, "critical"};
  RuleSettings sla_at_risk{true, "warning"};
  RuleSettings stuck_run{true, "warning"};
  long long stuck_after_sec = 900;  // no event for this long
  RuleSettings gate_failing{true, "warning"};
  long long gate_in_a_row = 3;    // the newest this many results of a gate failed (0: not judged)
  long long gate_in_window = 10;  // or it failed this many times within gate_window_sec (0: not judged)
  long long gate_window_sec = 3600;
  RuleSettings retry_storm{true, "warning"};
  long long retry_count = 10;  // this many retries within retry_window_sec
  long long retry_window_sec = 600;
  RuleSettings approval_deadline{true, "warning"};
  long long approval_within_sec = 3600;  // a waiting run's deadline is this close
  RuleSettings retention_over_cap{true, "warning"};
  long long retention_check_every_sec = 300;  // how often serve measures the capped lanes
  RuleSettings plugin_circuit_open{true, "critical"};
};

// The policy as alerts.json would say it, every default filled in.
nlohmann::json to_json(const AlertPolicy& p);

// Reads a policy document that passed the schema; absent rules and fields keep their defaults.
AlertPolicy alert_policy_from(const nlohmann::json& doc);

// <root>/policies/alerts.json checked against schemas/alerts.schema.json. A missing file gives the
// defaults; an unreadable or invalid one gives nullopt and, in `error`, the file, the JSON pointer and line
// of the first problem, what is wrong and what the schema allows.
std::optional<AlertPolicy> load_alert_policy(const std::filesystem::path& root, std::string& error);

// The lanes' sizes as last measured, with how long each has been over its cap.
struct DiskState {
  int64_t measured_ms = -1;  // -1: not measured yet
  std::vector<retention::LaneUsage> lanes;
  std::map<std::string, int64_t> over_since;  // lane -> the first measurement that found it over its cap
  std::string error;                          // the retention policy could not be read
};

struct Alert {
  std::string id;  // rule:subject, stable while the alert holds
  std::string rule, severity;
  int64_t since_ms = -1;  // when the rule began to hold
  std::string message;
  std::string link;  // the API path that shows the subject
  nlohmann::json subject = nlohmann::json::object();
};

struct AlertInputs {
  const RunStats& runs;
  const QueueStats& queue;
  const DiskState& disk;
  const std::vector<plugin::OpenCircuit>& circuits;
};

// Every alert that holds at `now_ms`, most severe first, then oldest first, then by id.
std::vector<Alert> evaluate_alerts(const AlertPolicy& p, const AlertInputs& in, int64_t now_ms);

nlohmann::json to_json(Alert&& a);  // takes the subject over

}  // namespace cp::serve
