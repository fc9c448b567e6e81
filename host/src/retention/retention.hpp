// Governed cleanup: policies/retention_policy.json names the lanes;
// each lane's plugin (retention_<lane>) plans what may go and why; apply deletes exactly what a plan lists,
// re-checking every entry first, by renaming it to a tombstone (".cp-tombstone-*", invisible to every
// listing) and then removing the tombstone. A crash mid-apply therefore never leaves a half-deleted bundle
// that `runs list` would show; leftover tombstones are swept by the next plan or apply.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::retention {

// The policy file is missing or invalid, or a lane asked for does not exist: exit 2.
struct PolicyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::filesystem::path root;      // the project root (packs/, policies/, .runtime-cache/)
  std::vector<std::string> lanes;  // only these lanes; empty = every enabled lane
  std::function<void(size_t done, size_t total, const std::string& what)> progress;  // apply only
};

// Plans every lane and writes .runtime-cache/cortexpilot/reports/retention_report.json (mode "plan").
// Returns the report (schemas/retention_report.schema.json).
nlohmann::json plan(const Options& o, const plugin::Registry& reg);

// Applies `plan_report` (from plan()): deletes exactly its candidates that still qualify, and writes the
// report (mode "apply"): per lane what was deleted, what was skipped and why, bytes reclaimed.
nlohmann::json apply(const Options& o, const plugin::Registry& reg, const nlohmann::json& plan_report);

std::filesystem::path report_path(const std::filesystem::path& root);

// policies/retention_policy.json of `root`, checked against its schema; PolicyError (naming the JSON pointer)
// when it is missing or invalid.
nlohmann::json load_policy(const std::filesystem::path& root);

// The folder lane `lane` governs: its `root` from the policy (`~/` expanded, relative to `root`), else the
// lane's place under the runtime folder.
std::filesystem::path lane_root(const std::filesystem::path& root, const std::string& lane,
                                const nlohmann::json& lane_policy);

}  // namespace cp::retention
