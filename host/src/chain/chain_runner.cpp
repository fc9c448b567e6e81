#include "chain/chain_runner.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "chain/chain_bundle.hpp"
#include "chain/chain_spec.hpp"
#include "log/log_lanes.hpp"
#include "log/logger.hpp"
#include "plugin/registry.hpp"
#include "run/engine.hpp"
#include "run/workspace.hpp"
#include "store/bundle.hpp"

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct StepRun {
  std::string run_id, status, verdict, reason;
};

// One chain, from its bundle to its seal. The steps of run_chain() are its methods; the state they share
// (the branch head, what each step reported, why the chain stopped) lives here.
class ChainRun {
 public:
  ChainRun(const ChainRequest& req, ChainOutcome& o) : req_(req), o_(o) {}
  ~ChainRun() {
    // Inline contracts were staged in a temporary folder of this run's own.
    std::error_code ec;
    if (!spec_.staging.empty()) fs::remove_all(spec_.staging, ec);
  }

  // Loads the plugins and the chain, resolves the repository's HEAD, creates the chain bundle. False (and
  // the outcome says why) when the chain cannot start.
  bool open();
  // Every step in its order, until one fails (unless it may), a quorum is missed or the run is interrupted.
  void run_steps();
  // Lifecycle, report, incident pack, then RUN_SEALED (as a run seals).
  void seal();

 private:
  void say(const std::string& line) const {
    if (req_.progress) req_.progress(line);
  }
  bool interrupted() const { return req_.interrupt && req_.interrupt->load(); }
  void stop(const std::string& v, const std::string& why, json failed) {
    end_.verdict = v;
    end_.reason = why;
    end_.failed_step = std::move(failed);
  }
  StepRun run_step(const Step& st, const fs::path& contract, const std::string& label);
  void carry(const Step& st, StepRun& r);
  void mark_handoffs_before(size_t index);
  bool run_task(const Step& st);
  bool run_review(const Step& st);

  const ChainRequest& req_;
  ChainOutcome& o_;
  plugin::Registry reg_;
  ChainSpec spec_;
  fs::path repo_;
  std::string start_commit_, branch_;
  std::string base_;  // where the next step starts: the chain branch's head
  std::unique_ptr<store::Bundle> bundle_;
  ChainEnd end_;
  std::vector<bool> handoff_marked_;
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
  spec_.staging = loaded.spec.staging;  // removed with this object, valid or not
  if (!loaded.ok) {
    o_.stage = ChainOutcome::Stage::invalid;
    o_.diagnostics = loaded.diagnostics;
    o_.error = loaded.error;
    return false;
  }
  spec_ = loaded.spec;
  handoff_marked_.assign(spec_.steps.size(), false);
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
  branch_ = chain_branch(o_.run_id);
  try {
    bundle_ = store::Bundle::create(req_.root, o_.run_id, spec_.doc,
                                    chain_manifest(spec_, o_.run_id, repo_, start_commit_));
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
    r.reason =
        "the step's pack requires approval, which `chain run` cannot wait for; queue the chain (`cp-host "
        "chain submit`) so that serve waits for the approval, or use a pack without it";
  }
  events.append("CHAIN_STEP_FINISHED", {{"step_id", st.id},
                                        {"role", st.role},
                                        {"run_id", r.run_id},
                                        {"status", r.status},
                                        {"verdict", r.verdict},
                                        {"reason", r.reason}});
  if (r.verdict == "success" && st.kind == "task") carry(st, r);
  return r;
}

// Commits a passed task step's change onto the chain branch (the promote machinery, no working tree).
void ChainRun::carry(const Step& st, StepRun& r) {
  Carried c = carry_forward(req_.root, r.run_id, branch_, o_.run_id, st.id);
  if (!c.ok) {
    r.verdict = "error";
    r.reason = c.error;
  } else if (!c.commit.empty()) {
    base_ = c.commit;
    bundle_->events().append(
        "CHAIN_BRANCH_ADVANCED",
        {{"step_id", st.id}, {"branch", branch_}, {"commit", base_}, {"run_id", r.run_id}});
  }
}

// Marks the handoffs that stand just before step `index` in the chain file (after the step before them).
void ChainRun::mark_handoffs_before(size_t index) {
  size_t first = index;
  while (first > 0 && spec_.steps[first - 1].kind == "handoff") --first;
  for (size_t h = first; h < index; ++h) {
    if (handoff_marked_[h]) continue;
    handoff_marked_[h] = true;
    const Step& st = spec_.steps[h];
    json prev = end_.steps_report.empty() ? json(nullptr) : end_.steps_report.back()["run_ids"].back();
    json mark = handoff_mark(st, prev);
    bundle_->events().append("CHAIN_HANDOFF_STEP_MARKED", mark);
    end_.handoffs.push_back(mark);
    say("handoff " + st.id + ": " + mark["from_role"].get<std::string>() + " -> " +
        mark["to_role"].get<std::string>());
  }
}

// A task step: one run. False when it did not pass.
bool ChainRun::run_task(const Step& st) {
  json entry{{"step_id", st.id}, {"kind", st.kind}, {"role", st.role}, {"run_ids", json::array()}};
  StepRun r = run_step(st, st.contracts[0], st.id);
  entry["run_ids"].push_back(r.run_id);
  entry["verdict"] = r.verdict;
  entry["reason"] = r.reason;
  end_.step_verdicts[st.id] = r.verdict;
  end_.steps_report.push_back(entry);
  say("step " + st.id + ": " + r.verdict);
  if (r.verdict == "success") return true;
  if (st.continue_on_fail && !interrupted()) {
    say("step " + st.id + " may fail (continue_on_fail): the chain goes on");
    return false;
  }
  stop(r.verdict, "step " + st.id + " (" + st.role + ") ended " + r.verdict + ": " + r.reason,
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
  json votes = json::array();
  for (size_t i = 0; i < st.contracts.size(); ++i) {
    StepRun r = run_step(st, st.contracts[i], st.id + "#" + std::to_string(i + 1));
    entry["run_ids"].push_back(r.run_id);
    votes.push_back({{"reviewer", i + 1},
                     {"run_id", r.run_id},
                     {"verdict", r.verdict},
                     {"approve", r.verdict == "success"}});
    if (interrupted()) break;
  }
  json q = quorum_evaluation(st, votes);
  bundle_->events().append("CHAIN_QUORUM_EVALUATED", q);
  end_.quorums.push_back(q);
  const bool met = q["met"].get<bool>();
  const int approvals = q["approvals"].get<int>();
  entry["verdict"] = met ? "success" : "failure";
  entry["quorum"] = q;
  end_.step_verdicts[st.id] = entry["verdict"];
  end_.steps_report.push_back(entry);
  say("review " + st.id + ": " + std::to_string(approvals) + " of " + std::to_string(st.contracts.size()) +
      " approve, " + std::to_string(st.quorum) + " needed: quorum " + (met ? "met" : "not met"));
  if (met) return true;
  if (st.continue_on_fail && !interrupted()) return false;
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
    bool stopped = false;
    int allowed_failures = 0;
    // One step at a time, in an order that respects every step's depends_on.
    for (size_t index : spec_.order) {
      const Step& st = spec_.steps[index];
      if (interrupted()) {
        std::string why = "interrupted before step " + st.id;
        stop("cancelled", why,
             {{"step_id", st.id}, {"role", st.role}, {"verdict", "cancelled"}, {"reason", why}});
        stopped = true;
        break;
      }
      mark_handoffs_before(index);
      say("step " + st.id + " (" + st.role + ")");
      if (st.kind == "task" ? run_task(st) : run_review(st)) {
        end_.observed_roles.push_back(st.role);
      } else if (!end_.failed_step.is_null() || end_.verdict != "success") {
        stopped = true;
        break;
      } else {
        ++allowed_failures;
      }
    }
    // Handoffs after the last step close the chain's file.
    if (!stopped) mark_handoffs_before(spec_.steps.size());
    if (!stopped && allowed_failures > 0)
      end_.reason =
          "every step passed but " + std::to_string(allowed_failures) + " allowed to fail (continue_on_fail)";
  } catch (const std::exception& e) {
    end_.verdict = "error";
    end_.reason = e.what();
    log::error("chain " + o_.run_id + ": " + end_.reason);
  }
}

void ChainRun::seal() {
  try {
    end_.final_commit = base_ != start_commit_ ? base_ : "";
    o_.report = seal_chain(req_.root, *bundle_, spec_, repo_, start_commit_, branch_, end_);
    o_.verdict = end_.verdict;
    o_.reason = end_.reason;
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
