// Workflow cases: runs that carry one workflow_id form a case, snapshotted in
// .runtime-cache/cortexpilot/workflow-cases/<workflow_id>/case.json (schemas/workflow_case.schema.json)
// after each linked run ends or is decided. The snapshot orders runs by their manifest's created_at
// (newest last) and carries workflow_case_read_model, which reuses the newest run's persisted
// role_binding_summary rather than deriving a second authority. The bundles stay the truth: a case can
// always be rebuilt from them.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace cp::control {

std::filesystem::path workflow_cases_dir(const std::filesystem::path& root);

// Upserts the run described by `manifest` into its workflow's case.json (no-op without workflow_id).
// Serialised per workflow on an flock; written atomically. Never throws: a failure is logged, and the
// next linked run or `rebuild_workflow_case` writes the snapshot again.
void record_in_workflow_case(const std::filesystem::path& root, const nlohmann::json& manifest);

// Makes every seal in this process update its run's case (store/after_seal.hpp). The program installs it
// once, at start; the layers that seal never call this folder.
void record_workflow_cases_on_seal();

// Rebuilds case.json of `workflow_id` from every bundle that carries it. Returns the case (null when no
// run carries it).
nlohmann::json rebuild_workflow_case(const std::filesystem::path& root, const std::string& workflow_id);

// The case.json of `workflow_id`, or nullopt when there is none (or the id is not a safe name).
std::optional<nlohmann::json> read_workflow_case(const std::filesystem::path& root,
                                                 const std::string& workflow_id);

// Every case, newest latest-run first: [{workflow_id, status, verdict?, latest_run_id, run_count,
// updated_at}].
nlohmann::json list_workflow_cases(const std::filesystem::path& root);

}  // namespace cp::control
