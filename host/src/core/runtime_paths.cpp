#include "core/runtime_paths.hpp"

namespace cp::core {

path runtime_cache_dir(const path& root) {
  return root / ".runtime-cache";
}
path runtime_dir(const path& root) {
  return runtime_cache_dir(root) / "cortexpilot";
}
path logs_dir(const path& root) {
  return runtime_cache_dir(root) / "logs";
}
path cache_dir(const path& root) {
  return runtime_cache_dir(root) / "cache";
}

path runs_dir(const path& root) {
  return runtime_dir(root) / "runs";
}
path bundle_dir(const path& root, const std::string& run_id) {
  return runs_dir(root) / run_id;
}
path live_dir(const path& root) {
  return runs_dir(root) / ".live";
}
path live_marker(const path& root, const std::string& run_id) {
  return live_dir(root) / run_id;
}
path awaiting_dir(const path& root) {
  return runs_dir(root) / ".awaiting";
}
path awaiting_marker(const path& root, const std::string& run_id) {
  return awaiting_dir(root) / run_id;
}
path incoming_dir(const path& root) {
  return runs_dir(root) / ".incoming";
}
path replicas_dir(const path& root) {
  return runs_dir(root) / ".replicas";
}
path replica_marker(const path& root, const std::string& run_id) {
  return replicas_dir(root) / run_id;
}

path worktrees_dir(const path& root) {
  return runtime_dir(root) / "worktrees";
}
path worktree_dir(const path& root, const std::string& run_id) {
  return worktrees_dir(root) / run_id;
}
path agent_homes_dir(const path& root) {
  return runtime_dir(root) / "codex-home";
}
path agent_home_dir(const path& root, const std::string& run_id) {
  return agent_homes_dir(root) / run_id;
}
path run_tmp_root(const path& root) {
  return runtime_dir(root) / "tmp";
}
path run_tmp_dir(const path& root, const std::string& run_id) {
  return run_tmp_root(root) / run_id;
}

path run_index_file(const path& root) {
  return runtime_dir(root) / "index" / "runs.idx";
}

path queue_log(const path& root) {
  return runtime_dir(root) / "queue.jsonl";
}
path queue_contracts_dir(const path& root) {
  return runtime_dir(root) / "queue" / "contracts";
}
path queue_logs_dir(const path& root) {
  return runtime_dir(root) / "queue" / "logs";
}
path queue_chains_dir(const path& root) {
  return runtime_dir(root) / "queue" / "chains";
}
path intake_dir(const path& root) {
  return runtime_dir(root) / "intake";
}
path host_reports_dir(const path& root) {
  return runtime_dir(root) / "reports";
}
path workflow_cases_dir(const path& root) {
  return runtime_dir(root) / "workflow-cases";
}
path serve_info_file(const path& root) {
  return runtime_dir(root) / "serve.json";
}
path serve_lock_file(const path& root) {
  return runtime_dir(root) / "serve.lock";
}
path host_events_log(const path& root) {
  return runtime_dir(root) / "host-events.jsonl";
}
path role_config_lock(const path& root) {
  return runtime_dir(root) / "role-config.lock";
}

path shared_state_dir(const path& root, const std::string& name) {
  static const char* const kHostFolders[] = {"runs",  "worktrees", "codex-home",     "tmp",
                                             "queue", "intake",    "workflow-cases", "reports"};
  if (name.empty() || name.size() > 64 || name[0] < 'a' || name[0] > 'z') return {};
  for (char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return {};
  for (const char* own : kHostFolders)
    if (name == own) return {};
  return runtime_dir(root) / name;
}

}  // namespace cp::core
