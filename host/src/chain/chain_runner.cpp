#include "chain/chain_runner.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "chain/chain_spec.hpp"
#include "control/actor.hpp"
#include "control/evidence.hpp"
#include "core/sha256.hpp"
#include "log/log_lanes.hpp"
#include "log/logger.hpp"
#include "plugin/registry.hpp"
#include "run/engine.hpp"
#include "run/workspace.hpp"
#include "store/bundle.hpp"

#include <unistd.h>

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct StepRun {
  std::string run_id, status, verdict, reason;
};

json failed_gates_of(const fs::path& root, const std::string& run_id) {
  json out = json::array();
  json m = core::read_json_file(core::runs_dir(root) / run_id / "manifest.json");
  if (!m.is_object()) return out;
  for (const auto& g : m.value("gates", json::array()))
    if (g.value("verdict", "") != "pass" && g.value("verdict", "") != "skipped") out.push_back(g);
  return out;
}

}  // namespace

ChainOutcome run_chain(const ChainRequest& req) {
  ChainOutcome o;
  auto say = [&](const std::string& line) {
    if (req.progress) req.progress(line);
  };
  plugin::Registry reg;
  try {
    run::load_plugins(req.root, req.plugins_dir, reg);
  } catch (const std::exception& e) {
    o.stage = ChainOutcome::Stage::invalid;
    o.error = e.what();
    return o;
  }
  LoadResult loaded = load_chain(req.chain_path, req.root, req.plugins_dir, &reg);
  if (!loaded.ok) {
    o.stage = ChainOutcome::Stage::invalid;
    o.diagnostics = loaded.diagnostics;
    o.error = loaded.error;
    return o;
  }
  const ChainSpec& spec = loaded.spec;
  fs::path repo = fs::absolute(req.repo).lexically_normal();
  std::string start_commit;
  try {
    start_commit = run::Workspace::resolve(repo, "HEAD");
  } catch (const std::exception& e) {
    o.stage = ChainOutcome::Stage::invalid;
    o.error = std::string(e.what()) + " (pass --repo pointing at a git repository)";
    return o;
  }

  o.run_id = store::new_run_id(spec.chain_id);
  const std::string branch = "cp-chain/" + o.run_id;
  std::unique_ptr<store::Bundle> bundle;
  try {
    json manifest{{"schema_version", 1},
                  {"kind", "chain"},
                  {"run_id", o.run_id},
                  {"task_id", spec.chain_id},
                  {"contract_sha256", core::sha256_hex(spec.doc.dump())},
                  {"runner", "chain"},
                  {"repo", repo.string()},
                  {"baseline_commit", start_commit},
                  {"status", "created"},
                  {"created_at", core::now_utc_iso()},
                  {"plugins", json::array()},
                  {"host_pid", static_cast<long>(::getpid())}};
    if (!spec.workflow_id.empty()) manifest["workflow_id"] = spec.workflow_id;
    bundle = store::Bundle::create(req.root, o.run_id, spec.doc, manifest);
  } catch (const std::exception& e) {
    o.stage = ChainOutcome::Stage::internal;
    o.error = std::string("cannot create the chain bundle: ") + e.what();
    return o;
  }
  o.bundle_dir = bundle->dir();
  auto& events = bundle->events();
  say("chain " + o.run_id + " -> " + bundle->dir().string());

  json steps_report = json::array(), handoffs = json::array(), quorums = json::array();
  json step_verdicts = json::object();
  std::vector<std::string> observed;  // roles of the steps that passed, in order
  std::string verdict = "success", reason = "every step passed";
  json failed_step;
  std::string base = start_commit;  // where the next step starts
  auto interrupted = [&] { return req.interrupt && req.interrupt->load(); };

  // One run of a contract as a step; its change (if it passed) moves the chain branch forward.
  auto run_step = [&](const Step& st, const fs::path& contract, const std::string& label) -> StepRun {
    run::RunRequest rr;
    rr.contract_path = contract;
    rr.repo = repo;
    rr.root = req.root;
    rr.plugins_dir = req.plugins_dir;
    rr.interrupt = req.interrupt;
    rr.baseline_override = base;
    rr.chain_link = {{"run_id", o.run_id}, {"step_id", st.id}, {"role", st.role}};
    if (req.progress) rr.progress = [&](const std::string& l) { say("  " + label + ": " + l); };
    events.append("CHAIN_STEP_STARTED", {{"step_id", st.id},
                                         {"kind", st.kind},
                                         {"role", st.role},
                                         {"contract", contract.string()},
                                         {"baseline_commit", base}});
    run::RunOutcome out = run::run_contract(rr);
    StepRun r{out.run_id, out.status, out.verdict, out.reason};
    if (out.stage != run::RunOutcome::Stage::sealed) {
      r.status = "not_run";
      r.verdict = "error";
      r.reason = out.error;
    } else if (out.status == "awaiting_approval") {
      r.verdict = "failure";
      r.reason = "the step's pack requires approval, which a chain cannot wait for; use a pack without it";
    }
    events.append("CHAIN_STEP_FINISHED", {{"step_id", st.id},
                                          {"role", st.role},
                                          {"run_id", r.run_id},
                                          {"status", r.status},
                                          {"verdict", r.verdict},
                                          {"reason", r.reason}});
    if (r.verdict == "success" && st.kind == "task") {
      auto pr =
          control::promote(req.root, r.run_id, branch, control::rule("chain " + o.run_id + " step " + st.id));
      if (pr.outcome == control::EvidenceResult::Outcome::promoted) {
        base = pr.evidence["commit"];
        events.append("CHAIN_BRANCH_ADVANCED",
                      {{"step_id", st.id}, {"branch", branch}, {"commit", base}, {"run_id", r.run_id}});
      } else if (pr.message.find("changed nothing") == std::string::npos) {
        r.verdict = "error";
        r.reason = "cannot carry the step's change forward: " + pr.message;
      }
    }
    return r;
  };

  try {
    bundle->update_manifest({{"status", "running"}, {"started_at", core::now_utc_iso()}});
    events.append("CHAIN_STARTED", {{"chain_id", spec.chain_id},
                                    {"steps", spec.steps.size()},
                                    {"repo", repo.string()},
                                    {"baseline_commit", start_commit},
                                    {"branch", branch}});
    for (const Step& st : spec.steps) {
      if (interrupted()) {
        verdict = "cancelled";
        reason = "interrupted before step " + st.id;
        failed_step = {{"step_id", st.id}, {"role", st.role}, {"verdict", "cancelled"}, {"reason", reason}};
        break;
      }
      if (st.kind == "handoff") {
        json h = st.handoff;
        h["step_id"] = st.id;
        h["previous_run_id"] = steps_report.empty() ? json(nullptr) : steps_report.back()["run_ids"].back();
        h["contract_rewritten"] = false;  // a handoff summarises; the next contract runs as written
        events.append("CHAIN_HANDOFF_STEP_MARKED", h);
        handoffs.push_back(h);
        say("handoff " + st.id + ": " + h["from_role"].get<std::string>() + " -> " +
            h["to_role"].get<std::string>());
        continue;
      }
      say("step " + st.id + " (" + st.role + ")");
      json entry{{"step_id", st.id}, {"kind", st.kind}, {"role", st.role}, {"run_ids", json::array()}};
      if (st.kind == "task") {
        StepRun r = run_step(st, st.contracts[0], st.id);
        entry["run_ids"].push_back(r.run_id);
        entry["verdict"] = r.verdict;
        entry["reason"] = r.reason;
        step_verdicts[st.id] = r.verdict;
        steps_report.push_back(entry);
        say("step " + st.id + ": " + r.verdict);
        if (r.verdict != "success") {
          verdict = r.verdict == "awaiting_approval" ? "failure" : r.verdict;
          reason = "step " + st.id + " (" + st.role + ") ended " + r.verdict + ": " + r.reason;
          failed_step = {{"step_id", st.id},
                         {"role", st.role},
                         {"run_id", r.run_id},
                         {"verdict", r.verdict},
                         {"reason", r.reason}};
          break;
        }
      } else {  // review: every reviewer runs; a reviewer approves when its run succeeds
        int approvals = 0;
        json votes = json::array();
        for (size_t i = 0; i < st.contracts.size(); ++i) {
          StepRun r = run_step(st, st.contracts[i], st.id + "#" + std::to_string(i + 1));
          bool approve = r.verdict == "success";
          approvals += approve ? 1 : 0;
          entry["run_ids"].push_back(r.run_id);
          votes.push_back(
              {{"reviewer", i + 1}, {"run_id", r.run_id}, {"verdict", r.verdict}, {"approve", approve}});
          if (interrupted()) break;
        }
        bool met = approvals >= st.quorum;
        json q{{"step_id", st.id},
               {"required", st.quorum},
               {"reviewers", st.contracts.size()},
               {"approvals", approvals},
               {"met", met},
               {"votes", votes}};
        events.append("CHAIN_QUORUM_EVALUATED", q);
        quorums.push_back(q);
        entry["verdict"] = met ? "success" : "failure";
        entry["quorum"] = q;
        step_verdicts[st.id] = entry["verdict"];
        steps_report.push_back(entry);
        say("review " + st.id + ": " + std::to_string(approvals) + " of " +
            std::to_string(st.contracts.size()) + " approve, " + std::to_string(st.quorum) +
            " needed: quorum " + (met ? "met" : "not met"));
        if (!met) {
          verdict = interrupted() ? "cancelled" : "failure";
          reason = "step " + st.id + " (" + st.role + "): reviewer quorum not met (" +
                   std::to_string(approvals) + " of " + std::to_string(st.quorum) + " required approvals)";
          failed_step = {{"step_id", st.id},
                         {"role", st.role},
                         {"verdict", "failure"},
                         {"reason", reason},
                         {"run_id", votes.empty() ? json("") : votes.back()["run_id"]}};
          break;
        }
      }
      observed.push_back(st.role);
    }
  } catch (const std::exception& e) {
    verdict = "error";
    reason = e.what();
    log::error("chain " + o.run_id + ": " + reason);
  }

  // Seal: lifecycle, report, evidence, then RUN_SEALED and the manifest (as a run seals).
  try {
    std::vector<std::string> expected_roles;
    for (const auto& st : spec.steps)
      if (st.kind != "handoff") expected_roles.push_back(st.role);
    bool closed = verdict == "success" && closes_pm_loop(observed);
    json lifecycle{{"pm_loop", pm_loop()},
                   {"require_pm_loop", spec.require_pm_loop},
                   {"planned_roles", expected_roles},
                   {"observed_roles", observed},
                   {"closed", closed},
                   {"quorum", quorums},
                   {"step_verdicts", step_verdicts},
                   {"handoffs", handoffs.size()}};
    if (!failed_step.is_null()) lifecycle["failed_step"] = failed_step;
    events.append("CHAIN_LIFECYCLE_EVALUATED", lifecycle);
    std::string final_commit = base != start_commit ? base : "";
    o.report = {{"schema_version", 1},       {"kind", "chain_report"},
                {"chain_id", spec.chain_id}, {"run_id", o.run_id},
                {"verdict", verdict},        {"reason", reason},
                {"repo", repo.string()},     {"baseline_commit", start_commit},
                {"steps", steps_report},     {"handoffs", handoffs},
                {"lifecycle", lifecycle},    {"created_at", core::now_utc_iso()}};
    if (!final_commit.empty()) o.report["result"] = {{"branch", branch}, {"commit", final_commit}};
    bundle->write_json("reports/chain_report.json", o.report);
    json reports{{"chain_report", "reports/chain_report.json"}};
    if (verdict != "success") {
      json fs_json = failed_step.is_null() ? json{{"step_id", ""}, {"reason", reason}} : failed_step;
      json incident{{"schema_version", 1},
                    {"kind", "incident_pack"},
                    {"run_id", o.run_id},
                    {"task_id", spec.chain_id},
                    {"verdict", verdict},
                    {"reason", reason},
                    {"failed_step", fs_json},
                    {"failed_gates", failed_step.contains("run_id") && failed_step["run_id"].is_string() &&
                                             !failed_step["run_id"].get<std::string>().empty()
                                         ? failed_gates_of(req.root, failed_step["run_id"])
                                         : json::array()},
                    {"runner", {{"status", verdict}, {"reason", reason}}},
                    {"log_tails", json::object()},
                    {"suggested_next_action",
                     "The chain stopped at step '" + fs_json.value("step_id", "") +
                         "': read that step's run bundle (its incident pack names what failed), fix the "
                         "contract or the code, and run the chain again."},
                    {"created_at", core::now_utc_iso()}};
      bundle->write_json("reports/incident_pack.json", incident);
      reports["incident_pack"] = "reports/incident_pack.json";
    }
    json completed{{"verdict", verdict}, {"reason", reason}, {"closed", closed}};
    if (!final_commit.empty()) completed["result"] = o.report["result"];
    events.append("CHAIN_COMPLETED", completed);
    bundle->seal("RUN_SEALED", {{"status", "sealed"}, {"verdict", verdict}, {"reason", reason}},
                 {{"status", "sealed"},
                  {"verdict", verdict},
                  {"reason", reason},
                  {"finished_at", core::now_utc_iso()},
                  {"reports", reports},
                  {"chain_steps", steps_report}});
    log::governance(o.run_id, "chain", "chain sealed " + verdict + ": " + reason,
                    {{"chain_id", spec.chain_id}, {"closed", closed}}, verdict != "success");
    o.verdict = verdict;
    o.reason = reason;
    o.stage = ChainOutcome::Stage::sealed;
  } catch (const std::exception& e) {
    o.stage = ChainOutcome::Stage::internal;
    o.error = std::string("cannot seal the chain bundle: ") + e.what();
  }
  return o;
}

}  // namespace cp::chain
