// Every path under a project's runtime root, named in this one file: no other file spells `.runtime-cache`
// or the names below it. A change of layout is a change here.
//
//   <root>/.runtime-cache/
//     cortexpilot/                 runtime_dir()
//       runs/<run_id>/             run bundles (runs_dir(), bundle_dir())
//       runs/.live/<run_id>        bundles not sealed yet
//       runs/.awaiting/<run_id>    runs awaiting an approval
//       runs/.incoming/<run_id>    bundles being made
//       runs/.replicas/<run_id>    bundles copied from the shared store (another node's runs)
//       worktrees/<run_id>         the runs' git worktrees
//       codex-home/<run_id>        agent CLIs' private homes
//       tmp/<run_id>               the runs' private TMPDIRs
//       queue.jsonl                the run queue (queue/contracts/, queue/logs/ beside it)
//       queue/chains/<run_id>/     queued chains: the chain as submitted, its steps' contracts
//       intake/                    intake previews kept by the API
//       reports/                   host reports (retention)
//       workflow-cases/<id>/       workflow cases
//       serve.json, serve.lock     the running server
//       host-events.jsonl          events of no run (a lock force-released, a role config applied)
//       role-config.lock           held while a role config is applied (serve and the CLI)
//       <name>/                    state shared across runs by runners declaring "shared_state:<name>"
//                                  (the browser runner's browser-profiles/)
//     logs/<lane>/                 the JSON log lanes
//     cache/                       caches (a retention lane)
#pragma once

#include <filesystem>
#include <string>

namespace cp::core {

using path = std::filesystem::path;

path runtime_cache_dir(const path& root);  // <root>/.runtime-cache
path runtime_dir(const path& root);        // <root>/.runtime-cache/cortexpilot
path logs_dir(const path& root);           // <root>/.runtime-cache/logs
path cache_dir(const path& root);          // <root>/.runtime-cache/cache

path runs_dir(const path& root);
path bundle_dir(const path& root, const std::string& run_id);
path live_dir(const path& root);
path live_marker(const path& root, const std::string& run_id);
path awaiting_dir(const path& root);
path awaiting_marker(const path& root, const std::string& run_id);
path incoming_dir(const path& root);
path replicas_dir(const path& root);
path replica_marker(const path& root, const std::string& run_id);

path worktrees_dir(const path& root);
path worktree_dir(const path& root, const std::string& run_id);
path agent_homes_dir(const path& root);
path agent_home_dir(const path& root, const std::string& run_id);
path run_tmp_root(const path& root);
path run_tmp_dir(const path& root, const std::string& run_id);

path queue_log(const path& root);            // queue.jsonl
path run_index_file(const path& root);       // index/runs.idx: serve's catalogue, saved
path queue_contracts_dir(const path& root);  // snapshots of submitted contracts
path queue_logs_dir(const path& root);       // each attempt's output
path queue_chains_dir(const path& root);     // queued chains, one folder each (chain/chain_record.hpp)
path intake_dir(const path& root);
path host_reports_dir(const path& root);
path workflow_cases_dir(const path& root);
path serve_info_file(const path& root);   // serve.json
path serve_lock_file(const path& root);   // serve.lock
path host_events_log(const path& root);   // host-events.jsonl: what happened outside any run
path role_config_lock(const path& root);  // role-config.lock: one role config change at a time

// <runtime_dir>/<name>, the folder a runner's "shared_state:<name>" capability names. Empty when <name>
// is not [a-z][a-z0-9-]{0,63} or is one of the host's own folders above.
path shared_state_dir(const path& root, const std::string& name);

}  // namespace cp::core
