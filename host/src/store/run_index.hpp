// Listing runs. A run's summary is read from its bundle's manifest.json alone (never its events or
// reports), so listing stays cheap however long the runs are. `cp-host runs list` rebuilds the list on
// demand; serve's RunCatalog keeps the same summaries in memory.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cp::store {

struct RunSummary {
  std::string run_id, task_id, status, verdict, runner, pack, created_at, reason;
  long long duration_ms = -1;
  std::vector<std::pair<std::string, std::string>> gates;  // gate id, verdict (the manifest's gates)
  // What the command tower aggregates (serve/run_stats.hpp): when the run's work ended, the approval it
  // waits for, and, while it is not sealed, when its event log last grew (events.jsonl's mtime; -1 unread).
  std::string finished_at, approval_requested_at, approval_deadline;
  long long events_mtime_ms = -1;
  // run_id, status and the manifest's listing fields as written: task_id, runner, pack, created_at,
  // sealed_at, verdict, reason, duration_ms, workflow_id, queue (what the API lists).
  nlohmann::json fields;
  std::filesystem::path dir;
};

// The summary of the bundle in `dir`, or nullopt when `dir` is not a folder. A manifest that is missing or
// not a JSON object gives status "unreadable"; a field of the wrong type reads as absent.
std::optional<RunSummary> read_run_summary(const std::filesystem::path& dir, const std::string& run_id);

// Newest first (created_at, then run id, descending). Bundles without a readable manifest are listed with
// status "unreadable".
std::vector<RunSummary> list_runs(const std::filesystem::path& root);

// The bundle folder of `run_id`, or nullopt when there is none (or the id is not a valid run id).
std::optional<std::filesystem::path> find_run(const std::filesystem::path& root, const std::string& run_id);

nlohmann::json to_json(const RunSummary& s);

}  // namespace cp::store
