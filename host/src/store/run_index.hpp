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
  std::string title, workflow_id;  // the task's title (empty for runs made before manifests held it)
  std::string kind = "run";        // "chain" for a chain's own bundle
  long long duration_ms = -1;
  std::vector<std::pair<std::string, std::string>> gates;  // gate id, verdict (the manifest's gates)
  // What the command tower aggregates (serve/run_stats.hpp): when the run's work ended, the approval it
  // waits for, and, while it is not sealed, when its event log last grew (events.jsonl's mtime; -1 unread).
  std::string finished_at, approval_requested_at, approval_deadline;
  long long events_mtime_ms = -1;
  // run_id, status and the manifest's listing fields as written: task_id, title, kind, runner, pack,
  // created_at, finished_at, sealed_at, verdict, reason, duration_ms, workflow_id, queue, chain (what the
  // API lists).
  nlohmann::json fields;
  std::filesystem::path dir;
};

// Which runs a listing keeps: every field set must match (empty: any).
struct RunQuery {
  std::string status;   // the manifest status, or for a sealed run its verdict
  std::string verdict;  // one of run_verdicts(), or kAwaitingApproval: the run waits for a decision
  std::string runner, pack;
  std::string workflow;  // workflow_id
  std::string since;     // ISO-8601: runs created at or after
  std::string text;      // a case-insensitive substring of the run id, task id or title
  std::string kind;      // "run" (a contract's run, chain steps included) or "chain" (a chain's own bundle)
};

bool matches(const RunSummary& s, const RunQuery& q);

// A run awaiting approval has no verdict yet; as a verdict filter it stands for that outcome so far.
inline constexpr const char* kAwaitingApproval = "awaiting_approval";

// The verdicts a sealed run may have (the manifest schema's list).
const std::vector<std::string>& run_verdicts();

// Why a query cannot be asked ("" when it can): a verdict that is none, a kind other than run or chain, a
// since that is not an ISO-8601 time, a text longer than kMaxQueryText. `param` names the offending field as
// the caller spells it.
inline constexpr size_t kMaxQueryText = 200;
std::string query_problem(const RunQuery& q, std::string& param);

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
