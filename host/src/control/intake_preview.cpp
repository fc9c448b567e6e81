#include "control/intake_preview.hpp"
#include "core/clock.hpp"

#include "contract/browser_policy.hpp"
#include "contract/role_binding.hpp"
#include "contract/validation.hpp"
#include "plugin/registry.hpp"
#include "run/capability_check.hpp"
#include "run/engine.hpp"
#include "run/run_sandbox.hpp"
#include "store/event_log.hpp"

namespace cp::control {

using nlohmann::json;

namespace {

// A browser contract's tasks, URL policy, profile and budgets, as the run would get them: the policy is
// the contract's within the operator's (policies/browser_policy.json), loopback-only without network.
json browser_section(const json& compiled) {
  const json& c = compiled["contract"];
  const json tasks = c["runtime_options"].value("browser_tasks", json::object());
  const json& policies = compiled["policies"];
  const json* op = policies.contains("browser_policy") ? &policies["browser_policy"] : nullptr;
  json list = json::array();
  json evidence = json::array();
  for (const auto& t : tasks.value("tasks", json::array())) {
    std::string id = t.value("id", "");
    json e{{"id", id},
           {"url", t.contains("url") ? t["url"] : json(nullptr)},
           {"steps", t.value("script", json::array()).size()},
           {"template", t.contains("task_template") ? t["task_template"] : json(nullptr)}};
    if (t.contains("focus")) e["focus"] = t["focus"];
    if (t.contains("timeout_ms")) e["timeout_ms"] = t["timeout_ms"];
    list.push_back(e);
    for (const char* f : {"screenshot.png", "dom.html", "console.jsonl", "network.jsonl", "extract.json"})
      evidence.push_back("artifacts/browser/" + id + "/" + f);
    if (t.value("task_template", "") == "page_brief")
      evidence.push_back("artifacts/browser/" + id + "/brief.json");
  }
  json policy = contract::effective_browser_policy(tasks, op, contract::compiled_network_allowed(compiled));
  json profile = tasks.value("profile", json::object());
  if (!profile.contains("mode")) profile["mode"] = "ephemeral";
  if (profile["mode"] == "persistent" && !profile.contains("wait_sec")) profile["wait_sec"] = 30;
  json budgets = tasks.value("budgets", json::object());
  budgets["max_pages"] = policy["max_pages"];
  budgets["max_requests"] = policy["max_requests"];
  return {{"tasks", list},
          {"headless", tasks.value("headless", true)},
          {"policy", policy},
          {"downloads", policy["allow_downloads"].get<bool>() ? "allowed" : "denied"},
          {"file_urls", policy["allow_file_urls"].get<bool>() ? "allowed" : "denied"},
          {"profile", profile},
          {"budgets", budgets},
          {"evidence", evidence}};
}

}  // namespace

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
  out.report = execution_plan(prep);
  out.ok = true;
  return out;
}

json execution_plan(const run::Prepared& prep) {
  json report;
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

  report = {{"schema_version", 1},
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
  if (c["runtime_options"].contains("browser_tasks")) report["browser"] = browser_section(doc);
  json sandbox = run::sandbox_preview(doc);
  report["sandbox"] = sandbox;
  if (!caps.problem.empty())
    report["refusal"] = caps.problem;
  else if (sandbox.contains("refusal"))
    report["would_run"] = false, report["refusal"] = sandbox["refusal"];
  return report;
}

}  // namespace cp::control
