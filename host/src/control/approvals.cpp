#include "control/approvals.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "control/run_copy.hpp"
#include "control/run_origin.hpp"
#include "log/log_lanes.hpp"
#include "log/logger.hpp"
#include "run/evidence_packs.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_seal.hpp"
#include "store/bundle_verify.hpp"
#include "store/run_index.hpp"

#include <fstream>
#include <functional>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;
using DecisionOutcome = DecisionResult::Outcome;

namespace {

// What the seal knew, read back from the bundle, to build the final evidence pack.
run::SealFacts facts_of(const store::Bundle& b, const json& manifest) {
  auto read = [&](const std::string& rel) {
    json doc = json::parse(b.read_verified(rel), nullptr, false);
    return doc.is_discarded() ? json(nullptr) : doc;
  };
  json tr = read("reports/task_result.json");
  json ap = read("reports/approval_pack.json");
  if (!tr.is_object()) tr = json::object();
  if (!ap.is_object()) ap = json::object();
  return run::SealFacts{manifest.value("run_id", ""),
                        manifest.value("task_id", ""),
                        "success",
                        "",
                        manifest.value("contract_sha256", ""),
                        manifest.value("baseline_commit", ""),
                        json{{"status", tr.value("status", "completed")},
                             {"reason", tr.value("reason", "")},
                             {"commands", tr.value("commands", json::array())}},
                        tr.value("changes", json::array()),
                        manifest.value("gates", json::array()),
                        ap.value("diff_sha256", "")};
}

bool past(const json& approval) {
  if (!approval.is_object() || !approval.contains("deadline")) return false;
  int64_t d = core::parse_iso_ms(approval["deadline"].get<std::string>());
  return d >= 0 && core::now_ms() > d;
}

// Seals a waiting run with the decision. `state` is approved | rejected | expired.
// `before`: events logged in the same step, ahead of APPROVAL_DECIDED (the approval that completed the
// count).
void seal_decision(store::Bundle& b, const std::string& state, const json& decided_by, const json& approvals,
                   store::PlainEvents before = {}) {
  json man = b.manifest();
  const std::string run_id = b.run_id();
  run::SealFacts f = facts_of(b, man);
  json approval = man.value("approval", json::object());
  json decision = decided_by;
  decision["decision"] = state == "approved" ? "approved" : "rejected";
  approval["state"] = state;
  approval["approvals"] = approvals;
  approval["decision"] = decision;

  std::string who = decided_by.value("by", "") + " (" + decided_by.value("how", "") + ")";
  std::string why = decided_by.value("reason", "");
  json reports = man.value("reports", json::object());
  std::string verdict, reason;
  if (state == "approved") {
    verdict = "success";
    reason = "approved by " + who + (why.empty() ? "" : ": " + why);
    json pack = run::make_proof_pack(f, b.dir());
    pack["approval"] = decision;
    b.write_json("reports/proof_pack.json", pack);
    reports["proof_pack"] = "reports/proof_pack.json";
  } else {
    verdict = "denied";
    reason = state == "expired"
                 ? "approval deadline " + approval.value("deadline", "") + " passed (default-deny)"
                 : "rejected by " + who + (why.empty() ? "" : ": " + why);
    f.verdict = verdict;
    f.reason = reason;
    json pack = run::make_incident_pack(f, b.dir());
    pack["suggested_next_action"] =
        state == "expired" ? "Nobody decided before the approval deadline, so the run was denied. Run the "
                             "contract again and "
                             "decide within the deadline, or raise approval.deadline_sec in the pack."
                           : "A human rejected the result: read their reason, change the task or contract, "
                             "and run it again.";
    pack["approval"] = decision;
    b.write_json("reports/incident_pack.json", pack);
    reports["incident_pack"] = "reports/incident_pack.json";
  }
  // A denied result is not kept around: its worktree goes, as the contract's rollback says.
  bool keep = man.value("worktree_kept", false);
  if (verdict != "success" && keep && man.contains("worktree")) {
    json contract = core::read_json_file(b.dir() / "contract.json");
    std::string strategy =
        contract.is_object() ? contract["contract"]["rollback"].value("strategy", "") : std::string();
    if (strategy != "none") {
      run::Workspace::remove(man.value("repo", ""), man["worktree"].get<std::string>());
      keep = false;
    }
  }
  // The decision and the seal are one step: APPROVAL_DECIDED and RUN_SEALED are signed together.
  before.emplace_back("APPROVAL_DECIDED", decision);
  b.seal("RUN_SEALED",
         {{"status", "sealed"}, {"verdict", verdict}, {"reason", reason}, {"approval", approval}},
         {{"status", "sealed"},
          {"verdict", verdict},
          {"reason", reason},
          {"approval", approval},
          {"reports", reports},
          {"worktree_kept", keep}},
         before);
  log::governance(run_id, "approvals", "run " + state + ": " + reason,
                  {{"verdict", verdict}, {"decision", decision}, {"task_id", man.value("task_id", "")}},
                  verdict != "success");
}

DecisionResult result(DecisionOutcome o, std::string message, json manifest = nullptr) {
  DecisionResult r;
  r.outcome = o;
  r.message = std::move(message);
  r.manifest = std::move(manifest);
  return r;
}

}  // namespace

fs::path awaiting_marker(const fs::path& root, const std::string& run_id) {
  return core::awaiting_marker(root, run_id);
}

DecisionResult decide(const fs::path& root, const std::string& run_id, Decision d, const Actor& actor) {
  if (std::string why = refusal_from_run(actor); !why.empty()) return result(DecisionOutcome::from_run, why);
  if (actor.how == "god_mode" && d != Decision::approve)
    return result(DecisionOutcome::invalid, "god-mode only approves; reject with a plain rejection");
  if (actor.how == "god_mode" && actor.reason.empty())
    return result(DecisionOutcome::invalid,
                  "a god-mode approval needs a reason (it is recorded with the decision)");
  auto dir = store::find_run(root, run_id);
  if (!dir) return result(DecisionOutcome::not_found, "no run " + run_id);
  if (std::string why = copy_refusal(root, run_id); !why.empty())
    return result(DecisionOutcome::elsewhere, why);
  // Verify before acting: a decision on a bundle changed after its seal would seal the change.
  if (std::string why = store::refusal_to_act(*dir); !why.empty())
    return result(DecisionOutcome::unverified, why);
  json peek = core::read_json_file(*dir / "manifest.json");
  if (peek.is_object() && peek.value("status", "") != "awaiting_approval")
    return result(DecisionOutcome::not_awaiting,
                  "run " + run_id + " is not awaiting approval (status " + peek.value("status", "?") +
                      (peek.contains("verdict") ? ", verdict " + peek["verdict"].get<std::string>() : "") +
                      ")",
                  peek);
  std::unique_ptr<store::Bundle> b;
  try {
    b = store::Bundle::open(root, run_id);
    if (b->manifest().value("status", "") != "awaiting_approval")
      return result(DecisionOutcome::not_awaiting, "run " + run_id + " has already been decided",
                    b->manifest());

    json approval = b->manifest().value("approval", json::object());
    if (past(approval)) {
      seal_decision(*b, "expired", actor_record(rule("approval deadline passed")),
                    approval.value("approvals", json::array()));
      return result(DecisionOutcome::expired,
                    "the approval deadline of run " + run_id + " (" + approval.value("deadline", "") +
                        ") has passed: the run was denied by rule",
                    b->manifest());
    }
    // The approvals counted so far, as sealed (each one re-sealed the manifest's approval list).
    json approvals = approval.value("approvals", json::array());
    if (!approvals.is_array()) approvals = json::array();
    json rec = actor_record(actor);
    if (d == Decision::reject) {
      seal_decision(*b, "rejected", rec, approvals);
      return result(DecisionOutcome::rejected, "run " + run_id + " rejected: verdict denied", b->manifest());
    }
    for (const auto& a : approvals)
      if (a.value("by", "") == actor.by && a.value("by_kind", "") == actor.by_kind && actor.how != "god_mode")
        return result(DecisionOutcome::duplicate,
                      actor.by + " has already approved run " + run_id + "; another approver is needed",
                      b->manifest());
    approvals.push_back(rec);
    int required = approval.value("approvers_required", 1);
    if (actor.how == "god_mode" || static_cast<int>(approvals.size()) >= required) {
      seal_decision(*b, "approved", rec, approvals, {{"APPROVAL_RECORDED", rec}});
      return result(DecisionOutcome::approved, "run " + run_id + " approved: verdict success", b->manifest());
    }
    approval["approvals"] = approvals;
    // A counted approval re-seals the bundle: the manifest's approval list changed.
    b->seal("APPROVAL_RECORDED", rec, {{"approval", approval}});
    return result(DecisionOutcome::recorded,
                  "approval " + std::to_string(approvals.size()) + " of " + std::to_string(required) +
                      " recorded for run " + run_id,
                  b->manifest());
  } catch (const std::exception& e) {
    return result(DecisionOutcome::error, e.what(), b ? b->manifest() : json(nullptr));
  }
}

namespace {

// One pass over runs/.awaiting: a marker whose run was decided (or is gone) is removed, a run past its
// deadline is denied by rule (its id goes to `expired`), and `waiting(id, bundle, manifest)` sees the rest.
void walk_awaiting(const fs::path& root, std::vector<std::string>& expired,
                   const std::function<void(const std::string&, const fs::path&, const json&)>& waiting) {
  std::error_code ec;
  fs::path dir = core::awaiting_dir(root);
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string id = e.path().filename().string();
    if (id.empty() || id[0] == '.') continue;
    fs::path bundle = core::runs_dir(root) / id;
    json man = core::read_json_file(bundle / "manifest.json");
    if (!man.is_object() || man.value("status", "") != "awaiting_approval") {
      // Decided (or gone) but the marker survived a crash.
      if (!man.is_object() || man.value("status", "") == "sealed") fs::remove(e.path(), ec);
      continue;
    }
    if (past(man.value("approval", json::object()))) {
      auto r = decide(root, id, Decision::reject, rule("approval deadline passed"));
      if (r.outcome == DecisionOutcome::expired) expired.push_back(id);
      continue;
    }
    if (waiting) waiting(id, bundle, man);
  }
}

}  // namespace

std::vector<std::string> expire_overdue(const fs::path& root) {
  std::vector<std::string> out;
  walk_awaiting(root, out, nullptr);
  return out;
}

json list_pending(const fs::path& root) {
  json out = json::array();
  std::vector<std::string> expired;
  walk_awaiting(root, expired, [&](const std::string& id, const fs::path& bundle, const json& man) {
    json a = man.value("approval", json::object());
    json item{{"run_id", id},
              {"task_id", man.value("task_id", "")},
              {"pack", man.value("pack", "")},
              {"requested_at", a.value("requested_at", man.value("finished_at", ""))},
              {"approvers_required", a.value("approvers_required", 1)},
              {"approvals", a.value("approvals", json::array())},
              {"approval_pack", core::read_json_file(bundle / "reports/approval_pack.json")}};
    if (a.contains("deadline")) item["deadline"] = a["deadline"];
    if (man.contains("workflow_id")) item["workflow_id"] = man["workflow_id"];
    out.push_back(item);
  });
  std::sort(out.begin(), out.end(), [](const json& x, const json& y) {
    return x["requested_at"].get<std::string>() != y["requested_at"].get<std::string>()
               ? x["requested_at"].get<std::string>() < y["requested_at"].get<std::string>()
               : x["run_id"].get<std::string>() < y["run_id"].get<std::string>();
  });
  return out;
}

const char* outcome_name(DecisionOutcome o) {
  switch (o) {
    case DecisionOutcome::recorded:
      return "recorded";
    case DecisionOutcome::approved:
      return "approved";
    case DecisionOutcome::rejected:
      return "rejected";
    case DecisionOutcome::expired:
      return "expired";
    case DecisionOutcome::not_awaiting:
      return "not_awaiting";
    case DecisionOutcome::unverified:
      return "unverified";
    case DecisionOutcome::duplicate:
      return "duplicate";
    case DecisionOutcome::elsewhere:
      return "elsewhere";
    case DecisionOutcome::not_found:
      return "not_found";
    case DecisionOutcome::invalid:
      return "invalid";
    case DecisionOutcome::from_run:
      return "from_run";
    case DecisionOutcome::error:
      return "error";
  }
  return "error";
}

}  // namespace cp::control
