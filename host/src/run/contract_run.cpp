#include "run/contract_run.hpp"
#include "contract/approval_request.hpp"
#include "contract/role_binding.hpp"
#include "core/clock.hpp"
#include "core/runtime_paths.hpp"
#include "core/sha256.hpp"
#include "log/log_lanes.hpp"
#include "log/logger.hpp"
#include "os/leftover_processes.hpp"
#include "plugin/host_services.hpp"
#include "plugin/registry.hpp"
#include "run/capability_check.hpp"
#include "run/evidence_packs.hpp"
#include "run/recovery.hpp"
#include "store/bundle_verify.hpp"
#include "store/event_check.hpp"
#include "store/run_index.hpp"

#include <cortexpilot/plugin.h>

#include <fcntl.h>
#include <unistd.h>
#include <cstdlib>
#include <map>
#include <system_error>

namespace cp::run {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// The key folder in use, the default ones and $CP_HOST_KEY_DIR's: all hidden from every run.
std::vector<fs::path> key_folders(const fs::path& in_use) {
  std::vector<fs::path> out{in_use};
  if (const char* e = std::getenv("CP_HOST_KEY_DIR"); e && *e) out.push_back(fs::absolute(e));
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) out.push_back(fs::path(x) / "cp-host");
  if (const char* h = std::getenv("HOME"); h && *h) out.push_back(fs::path(h) / ".config" / "cp-host");
  return out;
}

// The sha256 of a plugin library as it is on disk now, "" when it cannot be read. A library's name and
// version are what it says of itself; its path and bytes are what was loaded, so a first-party gate
// shadowed by another library of the same name shows in the manifest.
std::string library_sha256(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string hex;
  try {
    unsigned long long bytes = 0;
    hex = core::sha256_fd_hex(fd, bytes);
  } catch (const std::system_error&) {
    hex.clear();
  }
  ::close(fd);
  return hex;
}

json plugin_list(const plugin::Registry& reg, const std::vector<std::string>& ids) {
  json out = json::array();
  std::map<fs::path, std::string> hashed;  // one library holds many plugins: each file is read once
  for (const auto& id : ids)
    if (const auto* p = reg.find(id)) {
      auto [at, fresh] = hashed.try_emplace(p->library_path);
      if (fresh) at->second = library_sha256(p->library_path);
      out.push_back({{"id", p->id},
                     {"kind", std::string(plugin::kind_name(p->kind))},
                     {"version", p->version},
                     {"library", p->library_name + " " + p->library_version},
                     {"library_path", p->library_path.string()},
                     {"library_sha256", at->second},
                     {"isolation", p->isolation}});
    }
  return out;
}

// Kills whatever the run still has running at `stage` (double-forked and setsid'd processes included) and
// records it. The cgroup holds every process the run started; without one, the CP_RUN_ID marker is used.
void kill_leftovers(const os::Confinement* conf, const std::string& run_id, const std::string& stage,
                    store::EventLog& events) {
  size_t count = 0, survivors = 0;
  if (conf && conf->cgroup) {
    count = conf->cgroup->kill_all().size();
    survivors = conf->cgroup->pids().size();
  } else {
    count = static_cast<size_t>(os::kill_run_processes(run_id));
  }
  if (count > 0)
    events.append("RUN_PROCESSES_KILLED", {{"stage", stage}, {"count", count}, {"survivors", survivors}});
}

// The folder a runner's "shared_state:<name>" capability names (the registry refused a bad name at load).
fs::path shared_state_of(const plugin::PluginInfo& runner, const fs::path& root) {
  for (const auto& cap : runner.capabilities)
    if (cap.rfind("shared_state:", 0) == 0) return core::shared_state_dir(root, cap.substr(13));
  return {};
}

}  // namespace

ContractRun::ContractRun(const RunRequest& request, RunOutcome& outcome, Prepared prepared,
                         json replayed_manifest)
    : req(request),
      o(outcome),
      prep(std::move(prepared)),
      replayed(std::move(replayed_manifest)),
      compiled(prep.compiled),
      reg(*prep.registry),
      runner_info(prep.runner),
      c(compiled.document["contract"]),
      task_id(c.value("task_id", "")),
      runner_id(runner_info->id),
      pack_id(compiled.document["pack"].value("pack_id", "")) {}

bool ContractRun::resolve_inputs() {
  // The repository and baseline are input too: a wrong --repo or baseline_ref is refused before any bundle.
  repo_arg = req.repo;
  std::string baseline_ref = c["rollback"].value("baseline_ref", "HEAD");
  if (!replayed.is_null()) {
    // A replay starts from the very commit the earlier run started from.
    if (!req.repo_given) repo_arg = replayed.value("repo", req.repo.string());
    baseline_ref = replayed.value("baseline_commit", baseline_ref);
  }
  if (!req.baseline_override.empty()) baseline_ref = req.baseline_override;
  try {
    baseline_commit = Workspace::resolve(repo_arg, baseline_ref);
  } catch (const WorkspaceError& e) {
    o.stage = RunOutcome::Stage::invalid;
    o.error =
        std::string(e.what()) + " (pass --repo pointing at a git repository, or fix /rollback/baseline_ref)";
    return false;
  }

  // Resuming an agent thread: the earlier run must exist and have recorded its thread.
  if (c["runtime_options"].contains("resume_from_run")) {
    std::string from = c["runtime_options"]["resume_from_run"];
    auto dir = store::find_run(req.root, from);
    store::BundleCheck check;
    if (dir) {
      if (std::string why = store::refusal_to_act(*dir, &check); !why.empty()) {
        o.stage = RunOutcome::Stage::invalid;
        o.error = "runtime_options.resume_from_run: " + why;
        return false;
      }
    }
    json prev = dir ? check.sealed_manifest : json();
    if (!prev.is_object() || !prev.contains("thread_id")) {
      o.stage = RunOutcome::Stage::invalid;
      o.error = "runtime_options.resume_from_run: run '" + from + "' " +
                (dir ? "recorded no agent thread to resume"
                     : "does not exist under " + core::runs_dir(req.root).string());
      return false;
    }
    // The earlier run's runner state folder (cp_context.state_dir then); a runner built for ABI 1.0/1.1
    // knew it only as codex_home.
    resume = {{"thread_id", prev["thread_id"]},
              {"from_run", from},
              {"state_dir", fs::absolute(core::agent_home_dir(req.root, from)).lexically_normal().string()}};
    if (runner_info->abi_minor < 2) resume["codex_home"] = core::agent_home_dir(req.root, from).string();
  }

  // The host key signs the seal; a key that cannot be used stops the run before anything runs, and its
  // folder is hidden from the run's sandbox.
  try {
    host_key = store::HostKey::current();
  } catch (const store::KeyError& e) {
    o.stage = RunOutcome::Stage::internal;
    o.error = std::string("cannot sign the run's seal: ") + e.what();
    return false;
  }

  // Bundles a crash left unsealed are sealed before a new run starts (nothing silently dropped).
  for (const auto& r : recover_unsealed(req.root)) say(r.line());
  return true;
}

bool ContractRun::create_bundle() {
  // 3. The bundle.
  used = {runner_id};
  for (const auto& g : compiled.document["gates"]) {
    gate_specs.push_back({g["plugin"].get<std::string>(), g.value("required", true),
                          g.value("config", json()), std::chrono::seconds(g.value("timeout_sec", 0))});
    used.push_back(g["plugin"].get<std::string>());
  }
  for (const auto& cap : runner_info->capabilities)
    if (cap.rfind("probe:", 0) == 0) used.push_back(cap.substr(6));
  repo = fs::absolute(repo_arg).lexically_normal();
  o.run_id = req.run_id.empty() ? store::new_run_id(task_id) : req.run_id;
  if (!store::valid_run_id(o.run_id) || fs::exists(core::runs_dir(req.root) / o.run_id)) {
    o.stage = RunOutcome::Stage::invalid;
    o.error = "run id '" + o.run_id + "' is not a valid run id or is already used";
    return false;
  }
  try {
    json manifest{{"schema_version", 1},
                  {"run_id", o.run_id},
                  {"task_id", task_id},
                  {"contract_sha256", compiled.sha256},
                  {"runner", runner_id},
                  {"pack", pack_id},
                  {"repo", repo.string()},
                  {"baseline_ref", c["rollback"].value("baseline_ref", "")},
                  {"status", "created"},
                  {"created_at", core::now_utc_iso()},
                  {"plugins", plugin_list(reg, used)},
                  {"host_pid", static_cast<long>(::getpid())}};
    if (c.contains("workflow_id")) manifest["workflow_id"] = c["workflow_id"];
    if (c.contains("title") && c["title"].is_string()) manifest["title"] = c["title"];
    manifest["role_binding_summary"] = contract::role_binding_summary(compiled.document);
    if (!req.replay_of.empty()) manifest["replay_of"] = req.replay_of;
    if (!req.from_run.empty()) manifest["from_run"] = req.from_run;
    if (req.chain_link.is_object()) manifest["chain"] = req.chain_link;
    if (!req.queue_item_id.empty())
      manifest["queue"] = {{"item_id", req.queue_item_id}, {"attempt", req.attempt}};
    bundle = store::Bundle::create(req.root, o.run_id, compiled.document, manifest);
  } catch (const std::exception& e) {
    o.stage = RunOutcome::Stage::internal;
    o.error = std::string("cannot create the run bundle: ") + e.what();
    return false;
  }
  o.bundle_dir = bundle->dir();
  say("run " + o.run_id + " -> " + bundle->dir().string());
  return true;
}

void ContractRun::execute() {
  t0 = Clock::now();
  run_tmp = fs::absolute(core::run_tmp_dir(req.root, o.run_id)).lexically_normal();
  try {
    json started{{"task_id", task_id},    {"contract_sha256", compiled.sha256},
                 {"runner", runner_id},   {"pack", pack_id},
                 {"repo", repo.string()}, {"host_version", plugin::host_version()}};
    if (!req.replay_of.empty()) started["replay_of"] = req.replay_of;
    if (!req.from_run.empty()) started["from_run"] = req.from_run;
    if (req.chain_link.is_object()) started["chain"] = req.chain_link;
    events().append("RUN_STARTED", started);
    probe();
    make_workspace();
    confine();
    run_runner();
    collect();
    judge();
  } catch (const std::exception& e) {
    verdict = "error";
    reason = e.what();
    log::error("run " + o.run_id + ": " + reason);
    say("error: " + reason);
  }
}

void ContractRun::probe() {
  // 4. Probe: what the workspace and the runner need, fail-closed before anything runs.
  CapabilityCheck caps = check_capabilities(reg, *runner_info, c);
  for (const auto& [pid, answer] : caps.answers) {
    bundle->write_json("reports/probe_" + pid + ".json", answer);
    events().append("PROBE_COMPLETED", {{"probe", pid},
                                        {"status", answer.value("status", "error")},
                                        {"report", "reports/probe_" + pid + ".json"}});
  }
  bundle->update_manifest({{"runtime_capability_summary", caps.summary}});
  if (!caps.problem.empty()) throw std::runtime_error("probe failed: " + caps.problem);
}

void ContractRun::make_workspace() {
  // 5. Workspace.
  fs::path wt = core::worktrees_dir(req.root) / o.run_id;
  ws = Workspace::create(repo, baseline_commit, wt);
  bundle->update_manifest({{"status", "running"},
                           {"started_at", core::now_utc_iso()},
                           {"baseline_commit", ws->baseline_commit()},
                           {"worktree", ws->path().string()}});
  events().append("WORKSPACE_CREATED", {{"path", ws->path().string()},
                                        {"baseline_ref", c["rollback"].value("baseline_ref", "HEAD")},
                                        {"baseline_commit", ws->baseline_commit()}});
  say("workspace at " + ws->baseline_commit().substr(0, 12) + " (" + ws->path().string() + ")");
}

void ContractRun::confine() {
  // 5b. The sandbox: every process the run starts (runner, its agent, acceptance tests) enters it.
  places.root = fs::absolute(req.root).lexically_normal();
  if (!places.root.has_filename()) places.root = places.root.parent_path();  // "/x/." -> "/x"
  places.repo = repo;
  places.worktree = ws->path();
  places.tmp = run_tmp;
  places.scratch = fs::absolute(bundle->dir() / "artifacts" / "scratch").lexically_normal();
  places.agent_home = fs::absolute(core::agent_home_dir(req.root, o.run_id)).lexically_normal();
  places.shared_state = shared_state_of(*runner_info, places.root);
  places.hidden = req.hidden_paths;
  // Every key folder this user may have, not only the one in use: one project's runs must not read the
  // key another project (or the default folder) signs with.
  for (fs::path k : key_folders(host_key->dir()))
    if (fs::exists(k)) places.hidden.push_back(k);
  // The runner's state folder starts empty: nothing an earlier run of the same id left (retention keeps
  // these folders apart from the bundles) reaches this one.
  std::error_code gone;
  fs::remove_all(places.agent_home, gone);
  for (const auto& d : {places.tmp, places.scratch, places.agent_home}) fs::create_directories(d);
  if (!places.shared_state.empty()) fs::create_directories(places.shared_state);
  RunSandboxPlan plan = plan_run_sandbox(compiled.document, places);
  json sandbox_entry;
  try {
    confinement = confine_run(plan, o.run_id, sandbox_entry);
  } catch (const SandboxUnavailable& e) {
    bundle->update_manifest({{"sandbox", {{"kind", "none"}, {"why_none", e.what()}}}});
    throw;
  }
  bundle->update_manifest({{"sandbox", sandbox_entry}});
  json applied{{"kind", sandbox_entry["kind"]},
               {"network", sandbox_entry["network"]},
               {"process_tree", sandbox_entry["process_tree"]}};
  if (sandbox_entry.contains("landlock_abi")) applied["landlock_abi"] = sandbox_entry["landlock_abi"];
  if (sandbox_entry.contains("why_none")) applied["why_none"] = sandbox_entry["why_none"];
  events().append("SANDBOX_APPLIED", applied);
  say("sandbox: " + sandbox_entry.value("kind", "") +
      (sandbox_entry.contains("landlock_abi")
           ? " (Landlock ABI " + std::to_string(sandbox_entry["landlock_abi"].get<int>()) + ")"
           : "") +
      ", network " + sandbox_entry.value("network", "deny") + ", processes held by " +
      sandbox_entry.value("process_tree", ""));
  disk = std::make_unique<DiskBudget>(
      // Everything a run's processes can fill: the worktree, the temp dir, the agent home, and the bundle's
      // artifacts (the scratch folder, and the output logs the host writes for them).
      std::vector<fs::path>{ws->path(), run_tmp, bundle->dir() / "artifacts", places.agent_home},
      plan.disk_budget_bytes, [&flag = cancel_flag, conf = confinement, id = o.run_id](const std::string&) {
        flag = true;  // the runner and its spawns stop
        if (conf->cgroup)
          conf->cgroup->kill_all();
        else
          os::kill_run_processes(id);
      });
}

void ContractRun::run_runner() {
  // 6. Runner.
  std::string error;
  bool isolated_runner = runner_info->isolation == "isolated";
  std::unique_ptr<plugin::Instance> runner;
  std::unique_ptr<plugin::IsolatedPlugin> worker;
  if (isolated_runner)
    worker = std::make_unique<plugin::IsolatedPlugin>(*runner_info, runner_info->limits);
  else
    runner = plugin::Instance::create(*runner_info, error);
  auto runner_ctx = std::make_unique<plugin::CallContext>(runner_id);
  if (!runner && !worker) {
    rep.result = runner_error(error);
  } else {
    runner_ctx->set_run_id(o.run_id);
    runner_ctx->set_workspace(ws->path().string());
    runner_ctx->set_bundle_dir(bundle->dir().string());
    runner_ctx->set_state_dir(places.agent_home.string());
    runner_ctx->set_shared_state_dir(places.shared_state.string());
    runner_ctx->set_cancel_flag(&cancel_flag);
    runner_ctx->set_confinement(confinement);
    runner_ctx->set_event_sink(store::plugin_event_sink(*bundle));
    json input{{"run_id", o.run_id},
               {"contract", c},
               {"policies", compiled.document["policies"]},
               {"workspace", ws->path().string()},
               {"bundle_dir", bundle->dir().string()}};
    if (!resume.is_null()) input["resume"] = resume;
    // The role's prompt as compiled: a config applied after this run was compiled does not reach it.
    if (compiled.document.contains("role_prompt")) input["role_prompt"] = compiled.document["role_prompt"];
    json started{{"runner", runner_id}, {"version", runner_info->version}};
    if (input.contains("role_prompt")) {
      started["role"] = input["role_prompt"]["role"];
      started["role_prompt_sha256"] = input["role_prompt"]["sha256"];
    }
    events().append("RUNNER_STARTED", started);
    say("runner " + runner_id + " started");
    auto wall = wall_time_of(c);
    RunnerCalls calls =
        worker ? isolated_calls(*worker, *runner_ctx) : in_process_calls(*runner, *runner_ctx);
    rep = drive_runner(calls, input, cancel_flag, req.interrupt, wall, *bundle);
  }
  if (rep.abandoned) {
    // The runner still holds its context: both are leaked on purpose rather than freed under it. An
    // isolated runner's worker is simply killed when `worker` goes out of scope.
    abandoned = true;
    if (runner) {
      (void)runner.release();
      (void)runner_ctx.release();
    }
  }
  runner_result = rep.result;
  // Nothing the runner started may go on changing the worktree while it is collected and judged.
  kill_leftovers(confinement.get(), o.run_id, "runner", events());
  events().append("RUNNER_FINISHED", {{"status", runner_result.value("status", "error")},
                                      {"reason", runner_result.value("reason", "")},
                                      {"commands", runner_result.value("commands", json::array()).size()}});
  say("runner finished: " + runner_result.value("status", "error") + " (" +
      runner_result.value("reason", "") + ")");
}

void ContractRun::collect() {
  // 7. Collect.
  // A run already over its disk budget (sparse files count at their size) is not collected: git would
  // read every byte of it, and the run is denied whatever its diff says.
  disk->check();
  Collected col = disk->exceeded() ? Collected{} : ws->collect();
  // A redirected .git or a patch too large to judge is a broken rule, whatever the gates say of the rest.
  collect_denial = col.denial();
  for (const auto& ch : col.changes) {
    json e{{"status", ch.status}, {"path", ch.path}};
    if (!ch.old_path.empty()) e["old_path"] = ch.old_path;
    changes.push_back(e);
  }
  bundle->write_text("artifacts/diff.patch", col.patch);
  bundle->write_json("artifacts/changed_files.json", changes);
  diff_sha = core::sha256_hex(col.patch);
  events().append("DIFF_COLLECTED",
                  {{"files", changes.size()}, {"patch_bytes", col.patch.size()}, {"patch_sha256", diff_sha}});
  say("diff: " + std::to_string(changes.size()) + " changed path(s)");
}

void ContractRun::judge() {
  // 8. Gates.
  bundle->update_manifest({{"status", "gating"}});
  json commands = json::array();
  for (const auto& cmd : runner_result.value("commands", json::array()))
    if (cmd.value("status", "") != "declined") commands.push_back(cmd);
  gates::GateRunOptions gopt;
  gopt.input = json{
      {"run_id", o.run_id},
      {"contract", c},
      {"policies", compiled.document["policies"]},
      {"workspace", ws->path().string()},
      {"bundle_dir", bundle->dir().string()},
      {"baseline_commit", ws->baseline_commit()},
      {"changes", changes},
      {"commands", commands},
      {"usage", runner_result.value("usage", json::object())},
      {"runner",
       {{"status", runner_result.value("status", "error")}, {"reason", runner_result.value("reason", "")}}}};
  std::string rstatus = runner_result.value("status", "error");
  // The gates that declare they judge finished work only (CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER).
  auto gate_flags = [this](const std::string& id) -> uint32_t {
    const plugin::PluginInfo* p = reg.find(id);
    return p && p->kind == plugin::Kind::gate ? p->flags : 0;
  };
  if (rstatus != "completed") {
    for (const auto& g : gate_specs)
      if (gate_flags(g.plugin) & CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER) gopt.skip.push_back(g.plugin);
    gopt.skip_reason = "not run: the runner did not complete (" + rstatus + ")";
  }
  bool already_stopped = rep.interrupted || rep.deadline_hit;
  gopt.cancel = already_stopped ? nullptr : req.interrupt;
  gopt.confinement = confinement;
  auto results = gates::run_gates(reg, gate_specs, gopt, *bundle);
  kill_leftovers(confinement.get(), o.run_id, "gates", events());
  disk->check();
  disk->stop();
  VerdictInputs vin;
  vin.runner_status = rstatus;
  vin.interrupted = rep.interrupted || (req.interrupt && req.interrupt->load());
  vin.deadline_hit = rep.deadline_hit;
  for (const auto& r : results) {
    bool policy = (gate_flags(r.gate_id) & CP_FLAG_GATE_POLICY) != 0;
    vin.gates.push_back({r.gate_id, r.verdict, r.required, policy});
    if (policy) policy_gates.insert(r.gate_id);
    json s{{"gate_id", r.gate_id}, {"verdict", r.verdict}, {"required", r.required}, {"summary", r.summary}};
    if (!r.report.empty()) s["report"] = r.report;
    gate_summaries.push_back(s);
    say("gate " + r.gate_id + ": " + r.verdict + (r.summary.empty() ? "" : " — " + r.summary));
  }
  std::tie(verdict, reason) = decide_verdict(vin);
  if (!collect_denial.empty()) {
    verdict = "denied";
    reason = collect_denial;
  }
  if (disk->exceeded()) {
    // Over the disk budget is a broken rule, whatever the gates said about what was left.
    verdict = "denied";
    reason = disk->reason();
    // What the run wrote to its scratch folder past its budget is not kept: the seal would hash it, and
    // so would every verification after it.
    std::error_code ec;
    fs::remove_all(bundle->dir() / "artifacts" / "scratch", ec);
    events().append("DISK_BUDGET_EXCEEDED", {{"used_bytes", disk->used_bytes()},
                                             {"budget_bytes", disk->budget_bytes()},
                                             {"reason", reason},
                                             {"scratch_removed", !ec}});
  }
  if (verdict == "failure" && runner_result.contains("budget_exceeded"))
    reason = runner_result.value("reason", "");
  if (verdict != "success" && runner_result.contains("reason") &&
      (verdict == rstatus || verdict == "failure" || verdict == "timeout") &&
      reason.find("runner") != std::string::npos)
    reason += ": " + runner_result.value("reason", "");
}

void ContractRun::release() {
  // 9. Seal. Reports first, then RUN_SEALED, then the manifest: a crash between them is finished by recovery.
  if (disk) disk->stop();
  if (confinement && confinement->cgroup && !confinement->cgroup->destroy())
    log::error("run " + o.run_id + ": processes survived the kill of " +
               confinement->cgroup->path().string());
  if (confinement && !confinement->cgroup) os::kill_run_processes(o.run_id);
  {
    std::error_code ec;
    fs::remove_all(run_tmp, ec);
  }
}

// reports/task_result.json. The runner's own fields (everything of its schema-checked result the host does
// not write itself: thread_id, stream, whatever a third-party runner adds) pass verbatim, except names a
// reader could take for the host's judgement (a runner cannot put a `verdict` or `gates` beside its
// status); then the host's fields, which win over any the runner sent under the same name.
json ContractRun::task_result_doc() const {
  static const std::set<std::string> kReserved{"verdict",  "gates",     "approval", "approvals", "seal",
                                               "sealed",   "signature", "reports",  "evidence",  "events",
                                               "manifest", "decision",  "proof",    "incident"};
  json task_result = json::object();
  if (runner_result.is_object())
    for (const auto& [k, v] : runner_result.items())
      if (!kReserved.count(k)) task_result[k] = v;
  task_result.update(json{{"schema_version", 1},
                          {"run_id", o.run_id},
                          {"task_id", task_id},
                          {"runner", runner_id},
                          {"status", runner_result.value("status", "error")},
                          {"reason", runner_result.value("reason", "")},
                          {"commands", runner_result.value("commands", json::array())},
                          {"usage", runner_result.value("usage", json::object())},
                          {"changes", changes}});
  return task_result;
}

void ContractRun::seal() {
  release();
  try {
    bool awaiting = verdict == "success" && compiled.document["pack"].value("requires_approval", false);
    SealFacts f{o.run_id,
                task_id,
                verdict,
                reason,
                compiled.sha256,
                ws ? ws->baseline_commit() : "",
                json{{"status", runner_result.value("status", "error")},
                     {"reason", runner_result.value("reason", "")},
                     {"commands", runner_result.value("commands", json::array())}},
                changes,
                gate_summaries,
                diff_sha,
                policy_gates};
    json task_result = task_result_doc();
    bundle->write_json("reports/task_result.json", task_result);
    json reports{{"task_result", "reports/task_result.json"}};
    for (const auto& g : gate_summaries)
      if (g.contains("report")) reports["gate_" + g["gate_id"].get<std::string>()] = g["report"];
    json approval;
    if (awaiting) {
      approval = contract::approval_request(compiled.document["pack"]);
      json ap = make_approval_pack(f, pack_id);
      ap["approvers_required"] = approval["approvers_required"];
      if (approval.contains("deadline")) ap["deadline"] = approval["deadline"];
      bundle->write_json("reports/approval_pack.json", ap);
      reports["approval_pack"] = "reports/approval_pack.json";
    } else if (verdict == "success") {
      bundle->write_json("reports/proof_pack.json", make_proof_pack(f, bundle->dir()));
      reports["proof_pack"] = "reports/proof_pack.json";
    } else {
      bundle->write_json("reports/incident_pack.json", make_incident_pack(f, bundle->dir()));
      reports["incident_pack"] = "reports/incident_pack.json";
    }
    if (changes.is_array() && diff_sha.size()) reports["diff"] = "artifacts/diff.patch";
    o.status = awaiting ? "awaiting_approval" : "sealed";
    o.verdict = awaiting ? "" : verdict;
    o.reason = awaiting ? "pack '" + pack_id + "' requires approval; gates passed" : reason;
    json sealed{{"status", o.status}, {"reason", o.reason}};
    if (!awaiting) sealed["verdict"] = verdict;
    if (awaiting) sealed["approval"] = approval;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    bool keep = req.keep_worktree || awaiting || abandoned || c["rollback"].value("strategy", "") == "none";
    json patch{{"status", o.status},
               {"reason", o.reason},
               {"finished_at", core::now_utc_iso()},
               {"duration_ms", ms},
               {"gates", gate_summaries},
               {"reports", reports},
               {"usage", runner_result.value("usage", json::object())},
               {"worktree_kept", keep}};
    // The agent thread to resume, as the manifest records it: a short string or nothing.
    if (runner_result.contains("thread_id") && runner_result["thread_id"].is_string() &&
        runner_result["thread_id"].get<std::string>().size() <= 256)
      patch["thread_id"] = runner_result["thread_id"];
    if (!resume.is_null()) patch["resumed_from"] = resume["from_run"];
    if (!awaiting) patch["verdict"] = verdict;
    if (awaiting) patch["approval"] = approval;
    bundle->seal(awaiting ? "RUN_AWAITING_APPROVAL" : "RUN_SEALED", sealed, patch);
    // The governance lane: one line per decided run, for whoever audits verdicts across runs.
    json gov{{"task_id", task_id},
             {"pack", pack_id},
             {"runner", runner_id},
             {"status", o.status},
             {"duration_ms", ms}};
    if (!awaiting) gov["verdict"] = verdict;
    log::governance(o.run_id, "engine", "run " + o.status + (awaiting ? "" : " " + verdict) + ": " + o.reason,
                    gov, !awaiting && verdict != "success");
    if (ws && !keep) ws->remove();
    o.manifest = bundle->manifest();
    o.stage = RunOutcome::Stage::sealed;
  } catch (const std::exception& e) {
    // The bundle stays unsealed; the next cp-host start recovers it as host_interrupted-like error.
    o.stage = RunOutcome::Stage::internal;
    o.error = std::string("cannot seal the run bundle: ") + e.what();
  }
}

}  // namespace cp::run
