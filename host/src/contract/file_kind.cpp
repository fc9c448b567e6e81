#include "contract/file_kind.hpp"

#include <nlohmann/json.hpp>

namespace cp::contract {

namespace {

bool under(const std::filesystem::path& file, const char* dir) {
  for (const auto& part : file.parent_path())
    if (part == dir) return true;
  return false;
}

// packs/tasks/<name>/pack.json: a task pack (task_packs.hpp), not a governance pack.
bool task_pack_path(const std::filesystem::path& file) {
  const auto dir = file.parent_path();
  return file.filename() == "pack.json" && dir.parent_path().filename() == "tasks" &&
         dir.parent_path().parent_path().filename() == "packs";
}

std::string policy_schema(const std::string& policy) {
  if (policy == "plugins") return "plugin_config";
  if (policy == "command_allowlist" || policy == "forbidden_actions" || policy == "role_registry" ||
      policy == "role_config" || policy == "retention_policy" || policy == "policy_rules" ||
      policy == "browser_policy" || policy == "alerts")
    return policy;
  return "";
}

}  // namespace

std::string detect_schema(const std::filesystem::path& file, const nlohmann::json& doc) {
  const bool is_obj = doc.is_object();
  if (is_obj && doc.contains("policy") && doc["policy"].is_string()) {
    std::string s = policy_schema(doc["policy"].get<std::string>());
    if (!s.empty()) return s;
  }
  if (under(file, "policies")) {
    std::string stem = file.stem().string();
    std::string s = policy_schema(stem == "plugins" ? "plugins" : stem);
    if (!s.empty()) return s;
  }
  // Documents that name their kind; a chain is told by its shape (chains live under contracts/ too).
  if (is_obj && doc.contains("kind") && doc["kind"].is_string()) {
    static const char* kinds[] = {"approval_pack", "proof_pack",         "incident_pack",
                                  "chain_report",  "run_compare_report", "execution_plan_report",
                                  "workflow_case", "bundle_seal"};
    for (const char* k : kinds)
      if (doc["kind"] == k) return k;
  }
  if (is_obj && doc.contains("chain_id") && doc.contains("steps")) return "task_chain";
  if (task_pack_path(file) ||
      (is_obj && doc.contains("fields") && doc.contains("chain") && doc.contains("name")))
    return "task_pack";
  // The rest of a run bundle's reports, by shape.
  if (is_obj && doc.contains("gate_id") && doc.contains("verdict") && doc.contains("summary"))
    return "gate_verdict";
  if (is_obj && doc.contains("run_id") && doc.contains("runner") && doc.contains("commands") &&
      doc.contains("changes"))
    return "task_result";
  if (file.filename() == "changed_files.json" && doc.is_array()) return "changed_files";
  if (is_obj && doc.contains("contract") && doc.contains("pack") && doc.contains("gates") &&
      doc.contains("policies"))
    return "compiled_contract";
  if (under(file, "packs")) return "pack";
  if (under(file, "contracts")) return "task_contract";
  if (!is_obj) return "";
  if (doc.contains("pack_id")) return "pack";
  if (doc.contains("run_id") && doc.contains("contract_sha256")) return "run_manifest";
  if (doc.contains("task_id") && doc.contains("runtime_options")) return "task_contract";
  if (doc.contains("op") && doc.contains("item_id")) return "queue_item";
  return "";
}

}  // namespace cp::contract
