#include "chain/chain_bundle.hpp"

#include "control/actor.hpp"
#include "control/evidence.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "core/sha256.hpp"
#include "log/log_lanes.hpp"
#include "store/bundle.hpp"

#include <unistd.h>

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json failed_gates_of(const fs::path& root, const std::string& run_id) {
  json out = json::array();
  json m = core::read_json_file(core::runs_dir(root) / run_id / "manifest.json");
  if (!m.is_object()) return out;
  for (const auto& g : m.value("gates", json::array()))
    if (g.value("verdict", "") != "pass" && g.value("verdict", "") != "skipped") out.push_back(g);
  return out;
}

json chain_incident_pack(const fs::path& root, const std::string& run_id, const ChainSpec& spec,
                         const ChainEnd& end) {
  json failed = end.failed_step.is_null() ? json{{"step_id", ""}, {"reason", end.reason}} : end.failed_step;
  bool names_run = end.failed_step.is_object() && end.failed_step.contains("run_id") &&
                   end.failed_step["run_id"].is_string() &&
                   !end.failed_step["run_id"].get<std::string>().empty();
  return {{"schema_version", 1},
          {"kind", "incident_pack"},
          {"run_id", run_id},
          {"task_id", spec.chain_id},
          {"verdict", end.verdict},
          {"reason", end.reason},
          {"failed_step", failed},
          {"failed_gates", names_run ? failed_gates_of(root, end.failed_step["run_id"]) : json::array()},
          {"runner", {{"status", end.verdict}, {"reason", end.reason}}},
          {"log_tails", json::object()},
          {"suggested_next_action",
           "The chain stopped at step '" + failed.value("step_id", "") +
               "': read that step's run bundle (its incident pack names what failed), fix the contract or "
               "the code, and run the chain again."},
          {"created_at", core::now_utc_iso()}};
}

}  // namespace

std::string chain_branch(const std::string& chain_run_id) {
  return "cp-chain/" + chain_run_id;
}

json chain_manifest(const ChainSpec& spec, const std::string& run_id, const fs::path& repo,
                    const std::string& baseline_commit) {
  json manifest{{"schema_version", 1},
                {"kind", "chain"},
                {"run_id", run_id},
                {"task_id", spec.chain_id},
                {"contract_sha256", core::sha256_hex(spec.doc.dump())},
                {"runner", "chain"},
                {"repo", repo.string()},
                {"baseline_commit", baseline_commit},
                {"status", "created"},
                {"created_at", core::now_utc_iso()},
                {"plugins", json::array()},
                {"host_pid", static_cast<long>(::getpid())}};
  if (!spec.workflow_id.empty()) manifest["workflow_id"] = spec.workflow_id;
  if (spec.doc.contains("title") && spec.doc["title"].is_string()) manifest["title"] = spec.doc["title"];
  return manifest;
}

Carried carry_forward(const fs::path& root, const std::string& step_run_id, const std::string& branch,
                      const std::string& chain_run_id, const std::string& step_id) {
  Carried out;
  // Already carried (a carry cut short after the promotion, asked again): the commit it made.
  json m = core::read_json_file(core::runs_dir(root) / step_run_id / "manifest.json");
  if (m.is_object() && m.contains("evidence") && m["evidence"].is_object()) {
    const json& ev = m["evidence"];
    if (ev.value("decision", "") == "promoted" && ev.value("branch", "") == branch) {
      out.commit = ev.value("commit", "");
      return out;
    }
  }
  auto pr = control::promote(root, step_run_id, branch,
                             control::rule("chain " + chain_run_id + " step " + step_id));
  if (pr.outcome == control::EvidenceResult::Outcome::promoted) {
    out.commit = pr.evidence["commit"];
  } else if (pr.message.find("changed nothing") == std::string::npos) {
    out.ok = false;
    out.error = "cannot carry the step's change forward: " + pr.message;
  }
  return out;
}

json handoff_mark(const Step& st, const json& previous_run_id) {
  json h = st.handoff;
  h["step_id"] = st.id;
  h["previous_run_id"] = previous_run_id;
  h["contract_rewritten"] = false;  // a handoff summarises; the next contract runs as written
  return h;
}

json quorum_evaluation(const Step& st, const json& votes) {
  int approvals = 0;
  for (const auto& v : votes) approvals += v.value("approve", false) ? 1 : 0;
  return {{"step_id", st.id},       {"required", st.quorum},         {"reviewers", st.contracts.size()},
          {"approvals", approvals}, {"met", approvals >= st.quorum}, {"votes", votes}};
}

json seal_chain(const fs::path& root, store::Bundle& b, const ChainSpec& spec, const fs::path& repo,
                const std::string& baseline_commit, const std::string& branch, const ChainEnd& end,
                const json& extra_report) {
  const std::string run_id = b.run_id();
  bool closed = end.verdict == "success" && closes_pm_loop(end.observed_roles);
  std::vector<std::string> planned;
  for (const auto& st : spec.steps)
    if (st.kind != "handoff") planned.push_back(st.role);
  json life{{"pm_loop", pm_loop()},
            {"require_pm_loop", spec.require_pm_loop},
            {"planned_roles", planned},
            {"observed_roles", end.observed_roles},
            {"closed", closed},
            {"quorum", end.quorums},
            {"step_verdicts", end.step_verdicts},
            {"handoffs", end.handoffs.size()}};
  if (!end.failed_step.is_null()) life["failed_step"] = end.failed_step;
  b.events().append("CHAIN_LIFECYCLE_EVALUATED", life);
  json report{{"schema_version", 1},       {"kind", "chain_report"},
              {"chain_id", spec.chain_id}, {"run_id", run_id},
              {"verdict", end.verdict},    {"reason", end.reason},
              {"repo", repo.string()},     {"baseline_commit", baseline_commit},
              {"steps", end.steps_report}, {"handoffs", end.handoffs},
              {"lifecycle", life},         {"created_at", core::now_utc_iso()}};
  if (!end.final_commit.empty()) report["result"] = {{"branch", branch}, {"commit", end.final_commit}};
  for (const auto& [k, v] : extra_report.items()) report[k] = v;
  b.write_json("reports/chain_report.json", report);
  json reports{{"chain_report", "reports/chain_report.json"}};
  if (end.verdict != "success") {
    b.write_json("reports/incident_pack.json", chain_incident_pack(root, run_id, spec, end));
    reports["incident_pack"] = "reports/incident_pack.json";
  }
  json completed{{"verdict", end.verdict}, {"reason", end.reason}, {"closed", closed}};
  if (!end.final_commit.empty()) completed["result"] = report["result"];
  b.events().append("CHAIN_COMPLETED", completed);
  b.seal("RUN_SEALED", {{"status", "sealed"}, {"verdict", end.verdict}, {"reason", end.reason}},
         {{"status", "sealed"},
          {"verdict", end.verdict},
          {"reason", end.reason},
          {"finished_at", core::now_utc_iso()},
          {"reports", reports},
          {"chain_steps", end.steps_report}});
  log::governance(run_id, "chain", "chain sealed " + end.verdict + ": " + end.reason,
                  {{"chain_id", spec.chain_id}, {"closed", closed}}, end.verdict != "success");
  return report;
}

}  // namespace cp::chain
