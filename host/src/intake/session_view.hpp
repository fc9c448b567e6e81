// The command tower's sessions: an intake session and the chain it queued, read together — the
// conversation (questions and answers), the chain's steps and their runs, each run's events and metrics
// (duration, tokens, cost, gate failures), and the totals. What `GET /api/command-tower/sessions[/{id}]`
// and `cp-host tower sessions` show. Read-only; every run file is read bounded, beneath the runs folder,
// without following a link (a run wrote it).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace cp::intake {

// Every session, newest first: {sessions: [{intake_id, request, state, created_at, created_by, task_pack,
// chain_id, chain_state, chain_verdict, steps, runs, metrics}], count}.
nlohmann::json session_summaries(const std::filesystem::path& root);

// One session: the intake (with its conversation), the chain's view, and `runs`: for every run of the
// chain {run_id, step_id, status, verdict, metrics, events (the last `events_per_run`, oldest first),
// events_total}; `metrics` totals them. nullopt when there is no such session.
std::optional<nlohmann::json> session_detail(const std::filesystem::path& root, const std::string& intake_id,
                                             size_t events_per_run = 200);

// One run's metrics: {duration_ms, input_tokens, output_tokens, cost_usd, gate_failures: [gate ids],
// turns}; what a run does not report is absent (an unknown cost is not a zero one).
nlohmann::json run_metrics(const std::filesystem::path& root, const std::string& run_id);

}  // namespace cp::intake
