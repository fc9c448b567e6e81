// Governed cleanup: policies/retention_policy.json names the lanes;
// each lane's plugin (retention_<lane>) plans what may go and why; apply deletes exactly what a plan lists,
// re-checking every entry first, by renaming it to a tombstone (".cp-tombstone-*", invisible to every
// listing) and then removing the tombstone. A crash mid-apply therefore never leaves a half-deleted bundle
// that `runs list` would show; leftover tombstones are swept by the next plan or apply.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
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
  // apply only: when set, only these candidates of the plan (lane -> paths), so what goes is what a person
  // chose from a plan they saw and that still qualifies now; a chosen path the plan does not list is
  // skipped, saying so. Unset: every candidate.
  std::optional<std::map<std::string, std::set<std::string>>> only;
  // apply only: who asked (a token id, an OS user, cp-host) and its kind (token, os_user, system). When set,
  // an apply that deleted something or met an error is recorded as a RETENTION_APPLIED host event.
  std::string by, by_kind;
  std::string reason;  // apply only: why, in the asker's words (optional; recorded with the event)
};

// Plans every lane and writes .runtime-cache/cortexpilot/reports/retention_report.json (mode "plan").
// Returns the report (schemas/retention_report.schema.json).
nlohmann::json plan(const Options& o, const plugin::Registry& reg);

// Applies `plan_report` (from plan()): deletes exactly its candidates that still qualify, and writes the
// report (mode "apply"): per lane what was deleted, what was skipped and why, bytes reclaimed. A lane whose
// lane_root is not where the current policy places it is refused (an error, nothing applied): a plan
// cannot point apply at another folder.
nlohmann::json apply(const Options& o, const plugin::Registry& reg, const nlohmann::json& plan_report);

std::filesystem::path report_path(const std::filesystem::path& root);

// The lanes policies/retention_policy.json of `root` names (PolicyError when it is missing or invalid).
std::vector<std::string> lane_names(const std::filesystem::path& root);

// policies/retention_policy.json of `root`, checked against its schema; PolicyError (naming the JSON pointer)
// when it is missing or invalid.
nlohmann::json load_policy(const std::filesystem::path& root);

// The folder lane `lane` governs: its `root` from the policy (`~/` expanded, relative to `root`), else the
// lane's place under the runtime folder.
std::filesystem::path lane_root(const std::filesystem::path& root, const std::string& lane,
                                const nlohmann::json& lane_policy);

}  // namespace cp::retention
