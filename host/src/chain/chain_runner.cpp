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

// One chain, from its bundle to its seal. The steps of run_chain() are its methods; the state they share
// (the branch head, what each step reported, why the chain stopped) lives here.
class ChainRun {
 public:
  ChainRun(const ChainRequest& req, ChainOutcome& o) : req_(req), o_(o) {}

  // Loads the plugins and the chain, resolves the repository's HEAD, creates the chain bundle. False (and
  // the outcome says why) when the chain cannot start.
  bool open();
  // Every step in order, until one fails, a quorum is missed or the run is interrupted.
  void run_steps();
  // Lifecycle, report, incident pack, then RUN_SEALED (as a run seals).
  void seal();

 private:
  void say(const std::string& line) const {
    if (req_.progress) req_.progress(line);
  }
  bool interrupted() const { return req_.interrupt && req_.interrupt->load(); }
  void stop(const std::string& v, const std::string& why, json failed) {
    verdict_ = v;
    reason_ = why;
    failed_step_ = std::move(failed);
  }
  StepRun run_step(const Step& st, const fs::path& contract, const std::string& label);
  void carry_forward(const Step& st, StepRun& r);
  void mark_handoff(const Step& st);
  bool run_task(const Step& st);
  bool run_review(const Step& st);
  json lifecycle(bool closed) const;
  json incident_pack() const;

  const ChainRequest& req_;
  ChainOutcome& o_;
  plugin::Registry reg_;
  ChainSpec spec_;
  fs::path repo_;
  std::string start_commit_, branch_;
  std::string base_;  // where the next step starts: the chain branch's head
  std::unique_ptr<store::Bundle> bundle_;
  json steps_report_ = json::array(), handoffs_ = json::array(), quorums_ = json::array();
  json step_verdicts_ = json::object();
  std::vector<std::string> observed_;  // roles of the steps that passed, in order
  std::string verdict_ = "success", reason_ = "every step passed";
  json failed_step_;
};

bool ChainRun::open() {
  try {
    run::load_plugins(req_.root, req_.plugins_dir, reg_);
  } catch (const std::exception& e) {
    o_.stage = ChainOutcome::Stage::invalid;
    o_.error = e.what();
    return false;
  }
  LoadResult loaded = load_chain(req_.chain_path, req_.root, req_.plugins_dir, &reg_);
  if (!loaded.ok) {
    o_.stage = ChainOutcome::Stage::invalid;
    o_.diagnostics = loaded.diagnostics;
    o_.error = loaded.error;
    return false;
  }
  spec_ = loaded.spec;
  repo_ = fs::absolute(req_.repo).lexically_normal();
  try {
    start_commit_ = run::Workspace::resolve(repo_, "HEAD");
  } catch (const std::exception& e) {
    o_.stage = ChainOutcome::Stage::invalid;
    o_.error = std::string(e.what()) + " (pass --repo pointing at a git repository)";
    return false;
  }
  base_ = start_commit_;
  o_.run_id = store::new_run_id(spec_.chain_id);
  branch_ = "cp-chain/" + o_.run_id;
  try {
    json manifest{{"schema_version", 1},
                  {"kind", "chain"},
                  {"run_id", o_.run_id},
                  {"task_id", spec_.chain_id},
                  {"contract_sha256", core::sha256_hex(spec_.doc.dump())},
                  {"runner", "chain"},
                  {"repo", repo_.string()},
                  {"baseline_commit", start_commit_},
                  {"status", "created"},
                  {"created_at", core::now_utc_iso()},
                  {"plugins", json::array()},
                  {"host_pid", static_cast<long>(::getpid())}};
    if (!spec_.workflow_id.empty()) manifest["workflow_id"] = spec_.workflow_id;
    if (spec_.doc.contains("title") && spec_.doc["title"].is_string()) manifest["title"] = spec_.doc["title"];
    bundle_ = store::Bundle::create(req_.root, o_.run_id, spec_.doc, manifest);
  } catch (const std::exception& e) {
    o_.stage = ChainOutcome::Stage::internal;
    o_.error = std::string("cannot create the chain bundle: ") + e.what();
    return false;
  }
  o_.bundle_dir = bundle_->dir();
  say("chain " + o_.run_id + " -> " + bundle_->dir().string());
  return true;
}

// One run of a contract as a step; its change (if it passed) moves the chain branch forward.
StepRun ChainRun::run_step(const Step& st, const fs::path& contract, const std::string& label) {
  run::RunRequest rr;
  rr.contract_path = contract;
  rr.repo = repo_;
  rr.root = req_.root;
  rr.plugins_dir = req_.plugins_dir;
  rr.interrupt = req_.interrupt;
  rr.baseline_override = base_;
  rr.chain_link = {{"run_id", o_.run_id}, {"step_id", st.id}, {"role", st.role}};
  // Named before it starts, so the chain's events say which run a step is running while it runs (a
  // dashboard follows it live); named after the contract's task as every run is.
  json step_contract = core::read_json_file(contract);
  std::string task_id = step_contract.is_object() ? step_contract.value("task_id", "") : "";
  rr.run_id = store::new_run_id(store::valid_run_id(task_id) ? task_id : st.id);
  if (req_.progress) rr.progress = [this, label](const std::string& l) { say("  " + label + ": " + l); };
  auto& events = bundle_->events();
  events.append("CHAIN_STEP_STARTED", {{"step_id", st.id},
                                       {"kind", st.kind},
                                       {"role", st.role},
                                       {"contract", contract.string()},
                                       {"baseline_commit", base_},
                                       {"run_id", rr.run_id}});
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
  if (r.verdict == "success" && st.kind == "task") carry_forward(st, r);
  return r;
}

// Commits a passed task step's change onto the chain branch (the promote machinery, no working tree).
void ChainRun::carry_forward(const Step& st, StepRun& r) {
  auto pr =
      control::promote(req_.root, r.run_id, branch_, control::rule("chain " + o_.run_id + " step " + st.id));
  if (pr.outcome == control::EvidenceResult::Outcome::promoted) {
    base_ = pr.evidence["commit"];
    bundle_->events().append(
        "CHAIN_BRANCH_ADVANCED",
        {{"step_id", st.id}, {"branch", branch_}, {"commit", base_}, {"run_id", r.run_id}});
  } else if (pr.message.find("changed nothing") == std::string::npos) {
    r.verdict = "error";
    r.reason = "cannot carry the step's change forward: " + pr.message;
  }
}

void ChainRun::mark_handoff(const Step& st) {
  json h = st.handoff;
  h["step_id"] = st.id;
  h["previous_run_id"] = steps_report_.empty() ? json(nullptr) : steps_report_.back()["run_ids"].back();
  h["contract_rewritten"] = false;  // a handoff summarises; the next contract runs as written
  bundle_->events().append("CHAIN_HANDOFF_STEP_MARKED", h);
  handoffs_.push_back(h);
  say("handoff " + st.id + ": " + h["from_role"].get<std::string>() + " -> " +
      h["to_role"].get<std::string>());
}

// A task step: one run. False when the chain stops here.
bool ChainRun::run_task(const Step& st) {
  json entry{{"step_id", st.id}, {"kind", st.kind}, {"role", st.role}, {"run_ids", json::array()}};
  StepRun r = run_step(st, st.contracts[0], st.id);
  entry["run_ids"].push_back(r.run_id);
  entry["verdict"] = r.verdict;
  entry["reason"] = r.reason;
  step_verdicts_[st.id] = r.verdict;
  steps_report_.push_back(entry);
  say("step " + st.id + ": " + r.verdict);
  if (r.verdict == "success") return true;
  stop(r.verdict == "awaiting_approval" ? "failure" : r.verdict,
       "step " + st.id + " (" + st.role + ") ended " + r.verdict + ": " + r.reason,
       {{"step_id", st.id},
        {"role", st.role},
        {"run_id", r.run_id},
        {"verdict", r.verdict},
        {"reason", r.reason}});
  return false;
}

// A review step: every reviewer runs; a reviewer approves when its run succeeds. False when the quorum is
// missed.
bool ChainRun::run_review(const Step& st) {
  json entry{{"step_id", st.id}, {"kind", st.kind}, {"role", st.role}, {"run_ids", json::array()}};
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
  bundle_->events().append("CHAIN_QUORUM_EVALUATED", q);
  quorums_.push_back(q);
  entry["verdict"] = met ? "success" : "failure";
  entry["quorum"] = q;
  step_verdicts_[st.id] = entry["verdict"];
  steps_report_.push_back(entry);
  say("review " + st.id + ": " + std::to_string(approvals) + " of " + std::to_string(st.contracts.size()) +
      " approve, " + std::to_string(st.quorum) + " needed: quorum " + (met ? "met" : "not met"));
  if (met) return true;
  std::string why = "step " + st.id + " (" + st.role + "): reviewer quorum not met (" +
                    std::to_string(approvals) + " of " + std::to_string(st.quorum) + " required approvals)";
  stop(interrupted() ? "cancelled" : "failure", why,
       {{"step_id", st.id},
        {"role", st.role},
        {"verdict", "failure"},
        {"reason", why},
        {"run_id", votes.empty() ? json("") : votes.back()["run_id"]}});
  return false;
}

void ChainRun::run_steps() {
  try {
    bundle_->update_manifest({{"status", "running"}, {"started_at", core::now_utc_iso()}});
    bundle_->events().append("CHAIN_STARTED", {{"chain_id", spec_.chain_id},
                                               {"steps", spec_.steps.size()},
                                               {"repo", repo_.string()},
                                               {"baseline_commit", start_commit_},
                                               {"branch", branch_}});
    for (const Step& st : spec_.steps) {
      if (interrupted()) {
        std::string why = "interrupted before step " + st.id;
        stop("cancelled", why,
             {{"step_id", st.id}, {"role", st.role}, {"verdict", "cancelled"}, {"reason", why}});
        break;
      }
      if (st.kind == "handoff") {
        mark_handoff(st);
        continue;
      }
      say("step " + st.id + " (" + st.role + ")");
      if (!(st.kind == "task" ? run_task(st) : run_review(st))) break;
      observed_.push_back(st.role);
    }
  } catch (const std::exception& e) {
    verdict_ = "error";
    reason_ = e.what();
    log::error("chain " + o_.run_id + ": " + reason_);
  }
}

json ChainRun::lifecycle(bool closed) const {
  std::vector<std::string> expected_roles;
  for (const auto& st : spec_.steps)
    if (st.kind != "handoff") expected_roles.push_back(st.role);
  json lifecycle{{"pm_loop", pm_loop()},
                 {"require_pm_loop", spec_.require_pm_loop},
                 {"planned_roles", expected_roles},
                 {"observed_roles", observed_},
                 {"closed", closed},
                 {"quorum", quorums_},
                 {"step_verdicts", step_verdicts_},
                 {"handoffs", handoffs_.size()}};
  if (!failed_step_.is_null()) lifecycle["failed_step"] = failed_step_;
  return lifecycle;
}

json ChainRun::incident_pack() const {
  json failed = failed_step_.is_null() ? json{{"step_id", ""}, {"reason", reason_}} : failed_step_;
  bool names_run = failed_step_.contains("run_id") && failed_step_["run_id"].is_string() &&
                   !failed_step_["run_id"].get<std::string>().empty();
  return {
      {"schema_version", 1},
      {"kind", "incident_pack"},
      {"run_id", o_.run_id},
      {"task_id", spec_.chain_id},
      {"verdict", verdict_},
      {"reason", reason_},
      {"failed_step", failed},
      {"failed_gates", names_run ? failed_gates_of(req_.root, failed_step_["run_id"]) : json::array()},
      {"runner", {{"status", verdict_}, {"reason", reason_}}},
      {"log_tails", json::object()},
      {"suggested_next_action", "The chain stopped at step '" + failed.value("step_id", "") +
                                    "': read that step's run bundle (its incident pack names what failed), "
                                    "fix the contract or the code, and run the chain again."},
      {"created_at", core::now_utc_iso()}};
}

void ChainRun::seal() {
  try {
    bool closed = verdict_ == "success" && closes_pm_loop(observed_);
    json life = lifecycle(closed);
    bundle_->events().append("CHAIN_LIFECYCLE_EVALUATED", life);
    std::string final_commit = base_ != start_commit_ ? base_ : "";
    o_.report = {{"schema_version", 1},        {"kind", "chain_report"},
                 {"chain_id", spec_.chain_id}, {"run_id", o_.run_id},
                 {"verdict", verdict_},        {"reason", reason_},
                 {"repo", repo_.string()},     {"baseline_commit", start_commit_},
                 {"steps", steps_report_},     {"handoffs", handoffs_},
                 {"lifecycle", life},          {"created_at", core::now_utc_iso()}};
    if (!final_commit.empty()) o_.report["result"] = {{"branch", branch_}, {"commit", final_commit}};
    bundle_->write_json("reports/chain_report.json", o_.report);
    json reports{{"chain_report", "reports/chain_report.json"}};
    if (verdict_ != "success") {
      bundle_->write_json("reports/incident_pack.json", incident_pack());
      reports["incident_pack"] = "reports/incident_pack.json";
    }
    json completed{{"verdict", verdict_}, {"reason", reason_}, {"closed", closed}};
    if (!final_commit.empty()) completed["result"] = o_.report["result"];
    bundle_->events().append("CHAIN_COMPLETED", completed);
    bundle_->seal("RUN_SEALED", {{"status", "sealed"}, {"verdict", verdict_}, {"reason", reason_}},
                  {{"status", "sealed"},
                   {"verdict", verdict_},
                   {"reason", reason_},
                   {"finished_at", core::now_utc_iso()},
                   {"reports", reports},
                   {"chain_steps", steps_report_}});
    log::governance(o_.run_id, "chain", "chain sealed " + verdict_ + ": " + reason_,
                    {{"chain_id", spec_.chain_id}, {"closed", closed}}, verdict_ != "success");
    o_.verdict = verdict_;
    o_.reason = reason_;
    o_.stage = ChainOutcome::Stage::sealed;
  } catch (const std::exception& e) {
    o_.stage = ChainOutcome::Stage::internal;
    o_.error = std::string("cannot seal the chain bundle: ") + e.what();
  }
}

}  // namespace

ChainOutcome run_chain(const ChainRequest& req) {
  ChainOutcome o;
  ChainRun chain(req, o);
  if (!chain.open()) return o;
  chain.run_steps();
  chain.seal();
  return o;
}

}  // namespace cp::chain
