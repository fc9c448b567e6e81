#include "run/engine.hpp"
#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "plugin/search_path.hpp"
#include "run/contract_run.hpp"

#include "contract/approval_request.hpp"
#include "contract/compiler.hpp"
#include "contract/role_binding.hpp"
#include "core/schema_catalog.hpp"
#include "core/sha256.hpp"
#include "gates/gate_engine.hpp"
#include "log/log_lanes.hpp"
#include "log/logger.hpp"
#include "os/leftover_processes.hpp"
#include "os/process.hpp"
#include "plugin/host_services.hpp"
#include "plugin/instance.hpp"
#include "plugin/isolated_plugin.hpp"
#include "plugin/registry.hpp"
#include "run/capability_check.hpp"
#include "run/disk_budget.hpp"
#include "run/evidence_packs.hpp"
#include "run/recovery.hpp"
#include "run/run_sandbox.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/event_check.hpp"
#include "store/host_key.hpp"
#include "store/run_index.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <thread>

namespace cp::run {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {}  // namespace

namespace {

bool load_registry(const fs::path& root, const fs::path& plugins_dir, Prepared& p, RunOutcome& o) {
  p.registry = std::make_unique<plugin::Registry>();
  try {
    load_plugins(root, plugins_dir, *p.registry);
  } catch (const std::exception& e) {
    o.stage = RunOutcome::Stage::invalid;
    o.error = e.what();
    return false;
  }
  return true;
}

bool find_runner(const fs::path& plugins_dir, Prepared& p, RunOutcome& o) {
  std::string runner_id = p.compiled.document["contract"]["runtime_options"].value("runner", "");
  p.runner = p.registry->find(runner_id);
  if (!p.runner || p.runner->kind != plugin::Kind::runner) {
    o.stage = RunOutcome::Stage::invalid;
    o.error = "no runner plugin '" + runner_id + "' is loaded from " + plugins_dir.string() +
              " (see `cp-host plugins list`)";
    return false;
  }
  return true;
}

}  // namespace

void load_plugins(const fs::path& root, const fs::path& plugins_dir, plugin::Registry& reg) {
  fs::path policy_file = root / "policies" / "plugins.json";
  plugin::load_search_path(
      reg, plugins_dir,
      fs::exists(policy_file) ? plugin::PluginPolicy::load(policy_file) : plugin::PluginPolicy{});
  for (const auto& r : reg.refusals()) log::warn("plugin refused: " + r.file.string() + ": " + r.reason);
}

bool prepare_replay(const std::string& run_id, const fs::path& root, const fs::path& plugins_dir, Prepared& p,
                    RunOutcome& o) {
  auto fail = [&](const std::string& why) {
    o.stage = RunOutcome::Stage::invalid;
    o.error = why;
    o.not_found = true;
    return false;
  };
  auto dir = store::find_run(root, run_id);
  if (!dir) return fail("no run " + run_id + " to replay under " + core::runs_dir(root).string());
  // Verify before acting: a replay runs the contract the bundle holds, so that bundle must be as sealed.
  // The manifest used is the sealed one; the contract read below must hash to its contract_sha256.
  store::BundleCheck check;
  if (std::string why = store::refusal_to_act(*dir, &check); !why.empty())
    return fail("cannot replay: " + why);
  json man = check.sealed_manifest;
  if (!man.is_object() || man.value("kind", "run") != "run")
    return fail("run " + run_id +
                " is not a single contract run (a chain is replayed with `cp-host chain run`)");
  json doc = core::read_json_file(*dir / "contract.json");
  if (!doc.is_object()) return fail("the compiled contract of run " + run_id + " cannot be read");
  auto v = core::schema("compiled_contract").validate(doc);
  if (!v.empty())
    return fail("contract.json of run " + run_id + " breaks schemas/compiled_contract.schema.json at " +
                (v[0].pointer.empty() ? "/" : v[0].pointer) + ": " + v[0].message);
  std::string sha = core::sha256_hex(doc.dump());
  if (sha != man.value("contract_sha256", ""))
    return fail("contract.json of run " + run_id + " does not match the sha256 its manifest recorded (" +
                man.value("contract_sha256", "") + "); the bundle was changed after sealing");
  if (!load_registry(root, plugins_dir, p, o)) return false;
  p.compiled.document = doc;
  p.compiled.sha256 = sha;
  return find_runner(plugins_dir, p, o);
}

bool prepare_run(const fs::path& contract_path, const fs::path& root, const fs::path& plugins_dir,
                 Prepared& p, RunOutcome& o) {
  // The plugins first: validation checks the contract's references against the same registry.
  if (!load_registry(root, plugins_dir, p, o)) return false;
  plugin::Registry& reg = *p.registry;

  // 1. Validate: nothing is written for bad input.
  contract::ValidateOptions vopt;
  vopt.paths = {contract_path};
  vopt.root = root;
  vopt.plugins_dir = plugins_dir;
  vopt.registry = &reg;
  vopt.forced_schema = "task_contract";
  vopt.jobs = 1;
  try {
    auto report = contract::validate(vopt);
    if (!report.ok()) {
      o.stage = RunOutcome::Stage::invalid;
      o.diagnostics = report.diagnostics;
      o.error = "the contract is invalid";
      return false;
    }
  } catch (const contract::UsageError& e) {
    o.stage = RunOutcome::Stage::invalid;
    o.error = e.what();
    return false;
  }
  json contract_doc = core::read_json_file(contract_path);

  // 2. Compile.
  try {
    p.compiled = contract::compile_contract(contract_doc, root);
  } catch (const std::exception& e) {
    o.stage = RunOutcome::Stage::invalid;
    o.error = e.what();
    return false;
  }
  return find_runner(plugins_dir, p, o);
}

RunOutcome run_contract(const RunRequest& req) {
  RunOutcome o;
  // 1-2. Validate and compile: nothing is written for bad input.
  Prepared prep;
  json replayed;  // the manifest of the run being replayed
  if (!req.replay_of.empty()) {
    if (!prepare_replay(req.replay_of, req.root, req.plugins_dir, prep, o)) return o;
    store::BundleCheck check;
    store::refusal_to_act(*store::find_run(req.root, req.replay_of), &check);
    replayed = check.sealed_manifest;
  } else if (!req.from_run.empty()) {
    if (!prepare_replay(req.from_run, req.root, req.plugins_dir, prep, o)) return o;
  } else if (!prepare_run(req.contract_path, req.root, req.plugins_dir, prep, o)) {
    return o;
  }
  ContractRun run(req, o, std::move(prep), std::move(replayed));
  if (!run.resolve_inputs() || !run.create_bundle()) return o;
  run.execute();
  run.seal();
  return o;
}

}  // namespace cp::run
