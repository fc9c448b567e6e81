#include "run/run_sandbox.hpp"

#include <cstdlib>

namespace cp::run {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMiB = 1024ull * 1024ull;

}  // namespace

RunSandboxPlan plan_run_sandbox(const json& compiled, const RunPlaces& at) {
  RunSandboxPlan plan;
  json sb = compiled.contains("pack") ? compiled["pack"].value("sandbox", json::object()) : json::object();
  const json& c = compiled["contract"];
  json perms = c.value("tool_permissions", json::object());
  os::SandboxPolicy& p = plan.policy;
  p.hidden_paths = {at.root, at.repo};
  p.hidden_paths.insert(p.hidden_paths.end(), at.hidden.begin(), at.hidden.end());
  // git inside the worktree reads the repository's object store, refs and config; it writes nothing there.
  p.read_paths = {at.repo / ".git"};
  // read-only narrows the worktree; workspace-write and danger-full-access both mean the worktree alone:
  // a contract cannot widen its own sandbox (only the pack's sandbox section speaks for the host).
  if (perms.value("filesystem", "workspace-write") == "read-only")
    p.read_paths.push_back(at.worktree);
  else
    p.write_paths.push_back(at.worktree);
  // The shared state folder is not here: only a spawn that asks for it (CP_SPAWN_SHARED_STATE) gets it.
  for (const auto& w : {at.tmp, at.scratch, at.agent_home})
    if (!w.empty()) p.write_paths.push_back(w);
  p.tmp_dir = at.tmp;
  p.scratch_dir = at.scratch;
  // Network only when the contract asks for it and its pack allows it: a contract cannot widen its sandbox.
  bool pack_allows =
      compiled.contains("pack") && compiled["pack"].value("network_ceiling", "deny") == "allow";
  p.network = pack_allows && perms.value("network", "deny") == "allow";
  for (const auto& port : sb.value("connect_ports", json::array()))
    p.connect_ports.push_back(port.get<uint16_t>());
  p.max_file_bytes = sb.value("max_file_mb", uint64_t{1024}) * kMiB;
  p.max_open_files = sb.value("max_open_files", uint64_t{4096});
  p.max_processes = sb.value("max_processes", uint64_t{0});
  plan.may_run_unsandboxed = sb.value("on_unsupported", "refuse") == "run_unsandboxed";
  plan.disk_budget_bytes = sb.value("disk_budget_mb", uint64_t{2048}) * kMiB;
  return plan;
}

json sandbox_preview(const json& compiled) {
  RunPlaces none;
  RunSandboxPlan plan = plan_run_sandbox(compiled, none);
  os::SandboxSupport support = os::probe_sandbox_support();
  bool cgroup = !os::cgroup2_mount().empty() && std::getenv("CP_SANDBOX_SIMULATE_NO_CGROUP") == nullptr;
  json j{{"kind", support.landlock_abi > 0   ? "landlock+seccomp"
                  : plan.may_run_unsandboxed ? "none"
                                             : "refused"},
         {"kernel", support.to_json()},
         {"network", plan.policy.network ? "allow" : "deny"},
         {"connect_ports", plan.policy.connect_ports},
         {"max_file_bytes", plan.policy.max_file_bytes},
         {"max_open_files", plan.policy.max_open_files},
         {"disk_budget_bytes", plan.disk_budget_bytes},
         {"on_unsupported", plan.may_run_unsandboxed ? "run_unsandboxed" : "refuse"},
         {"process_tree", cgroup ? "cgroup" : "process_group"},
         {"writable", json::array({"worktree", "private TMPDIR", "artifacts/scratch", "agent home"})},
         {"hidden", json::array({"runtime root", "repository (apart from .git, read only)"})}};
  if (support.landlock_abi == 0 && !plan.may_run_unsandboxed)
    j["refusal"] = "sandbox unavailable: " + support.why_not + "; the pack refuses to run unsandboxed";
  return j;
}

std::shared_ptr<os::Confinement> confine_run(const RunSandboxPlan& plan, const std::string& run_id,
                                             json& entry) {
  auto conf = std::make_shared<os::Confinement>();
  std::string error;
  conf->sandbox = os::PreparedSandbox::prepare(plan.policy, error);
  entry = json::object();
  if (!conf->sandbox) {
    os::SandboxSupport support = os::probe_sandbox_support();
    bool kernel_lacks = support.landlock_abi == 0;
    if (!kernel_lacks || !plan.may_run_unsandboxed)
      throw SandboxUnavailable("sandbox unavailable: " + error +
                               (kernel_lacks
                                    ? "; the pack refuses to run unsandboxed (set sandbox.on_unsupported to "
                                      "run_unsandboxed in the pack to allow it, recorded in the manifest)"
                                    : ""));
    os::SandboxPolicy none = plan.policy;
    none.enabled = false;
    conf->sandbox = os::PreparedSandbox::prepare(none, error);
    entry["why_none"] = support.why_not;
  }
  std::string why_no_cgroup;
  conf->cgroup = os::RunCgroup::create(run_id, why_no_cgroup);
  json d = conf->sandbox->describe();
  for (auto it = d.begin(); it != d.end(); ++it) entry[it.key()] = it.value();
  entry["process_tree"] = conf->cgroup ? "cgroup" : "process_group";
  if (conf->cgroup)
    entry["cgroup"] = conf->cgroup->path().string();
  else
    entry["why_no_cgroup"] = why_no_cgroup;
  entry["disk_budget_bytes"] = plan.disk_budget_bytes;
  return conf;
}

}  // namespace cp::run
