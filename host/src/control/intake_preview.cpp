#include "control/intake_preview.hpp"
#include "core/clock.hpp"

#include "contract/role_binding.hpp"
#include "contract/validation.hpp"
#include "plugin/registry.hpp"
#include "run/capability_check.hpp"
#include "run/engine.hpp"
#include "run/run_sandbox.hpp"
#include "store/event_log.hpp"

namespace cp::control {

using nlohmann::json;

PreviewResult intake_preview(const std::filesystem::path& contract_path, const std::filesystem::path& root,
                             const std::filesystem::path& plugins_dir) {
  PreviewResult out;
  run::Prepared prep;
  run::RunOutcome bad;
  if (!run::prepare_run(contract_path, root, plugins_dir, prep, bad)) {
    out.diagnostics = bad.diagnostics;
    out.error = bad.error;
    return out;
  }
  const json& doc = prep.compiled.document;
  const json& c = doc["contract"];
  auto caps = run::check_capabilities(*prep.registry, *prep.runner, c);

  json gates = json::array();
  json bundle_files =
      json::array({"manifest.json", "contract.json", "events.jsonl", "reports/task_result.json",
                   "artifacts/diff.patch", "artifacts/changed_files.json"});
  for (const auto& g : doc["gates"]) {
    json e{{"plugin", g["plugin"]}, {"required", g.value("required", true)}};
    if (g.contains("timeout_sec")) e["timeout_sec"] = g["timeout_sec"];
    gates.push_back(e);
    bundle_files.push_back("reports/gate_" + g["plugin"].get<std::string>() + ".json");
  }
  bool approval = doc["pack"].value("requires_approval", false);
  bundle_files.push_back(approval ? "reports/approval_pack.json" : "reports/proof_pack.json");
  json workspace_outputs = json::array();
  for (const auto& r : c.value("required_outputs", json::array()))
    workspace_outputs.push_back(r.value("path", ""));
  json tests = json::array();
  for (const auto& t : c.value("acceptance_tests", json::array()))
    tests.push_back({{"name", t.value("name", "")}, {"must_pass", t.value("must_pass", true)}});

  json pack{{"pack_id", doc["pack"]["pack_id"]},
            {"governance_level", doc["pack"].value("governance_level", "")},
            {"requires_approval", approval}};
  if (doc["pack"].contains("approval")) pack["approval"] = doc["pack"]["approval"];

  json role_contract{{"task_id", c.value("task_id", "")},
                     {"task_type", c.value("task_type", "")},
                     {"title", c.value("title", "")},
                     {"allowed_paths", c.value("allowed_paths", json::array())},
                     {"forbidden_actions", c.value("forbidden_actions", json::array())},
                     {"acceptance_tests", tests.size()},
                     {"role_binding_summary", contract::role_binding_summary(doc)}};
  if (c.contains("workflow_id")) role_contract["workflow_id"] = c["workflow_id"];

  out.report = {{"schema_version", 1},
                {"kind", "execution_plan_report"},
                {"advisory", true},
                {"created_at", core::now_utc_iso()},
                {"task_id", c.value("task_id", "")},
                {"contract_sha256", prep.compiled.sha256},
                {"runner", prep.runner->id},
                {"pack", pack},
                {"gates", gates},
                {"acceptance_tests", tests},
                {"predicted_outputs",
                 {{"bundle", bundle_files},
                  {"workspace", workspace_outputs},
                  {"terminal_status", approval ? "awaiting_approval" : "sealed"}}},
                {"budgets", c.value("budgets", json::object())},
                {"runtime_capability_summary", caps.summary},
                {"would_run", caps.problem.empty()},
                {"role_contract_summary", role_contract}};
  json sandbox = run::sandbox_preview(doc);
  out.report["sandbox"] = sandbox;
  if (!caps.problem.empty())
    out.report["refusal"] = caps.problem;
  else if (sandbox.contains("refusal"))
    out.report["would_run"] = false, out.report["refusal"] = sandbox["refusal"];
  out.ok = true;
  return out;
}

}  // namespace cp::control
