// Listing runs. The index is rebuilt from the bundles on demand: only each bundle's manifest.json is read
// (never its events or reports), so listing stays cheap however long the runs are.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::store {

struct RunSummary {
  std::string run_id, task_id, status, verdict, runner, created_at, reason;
  long long duration_ms = -1;
  std::filesystem::path dir;
};

// Newest first. Bundles without a readable manifest are listed with status "unreadable".
std::vector<RunSummary> list_runs(const std::filesystem::path& root);

// The bundle folder of `run_id`, or nullopt when there is none (or the id is not a valid run id).
std::optional<std::filesystem::path> find_run(const std::filesystem::path& root, const std::string& run_id);

nlohmann::json to_json(const RunSummary& s);

}  // namespace cp::store
