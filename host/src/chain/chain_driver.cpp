#include "chain/chain_driver.hpp"
#include "core/json_text.hpp"

#include "chain/chain_bundle.hpp"
#include "chain/chain_progress.hpp"
#include "chain/chain_record.hpp"
#include "control/actor.hpp"
#include "control/approvals.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "log/log_lanes.hpp"
#include "run/workspace.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The manifest of a step's run, or null.
json step_manifest(const fs::path& root, const std::string& run_id) {
  if (run_id.empty() || !store::valid_run_id(run_id)) return nullptr;
  json m = core::read_json_file(core::runs_dir(root) / run_id / "manifest.json");
  return m.is_object() ? m : json(nullptr);
}

// The chain branch's head, or empty while no step moved it.
std::string branch_head(const std::string& repo, const std::string& branch) {
  try {
    return run::Workspace::resolve(repo, "refs/heads/" + branch);
  } catch (const std::exception&) {
    return "";
  }
}

// A verdict the chain report and CHAIN_COMPLETED accept.
std::string chain_verdict(const std::string& v) {
  static const char* const kVerdicts[] = {"success", "failure", "denied", "timeout", "cancelled", "error"};
  for (const char* k : kVerdicts)
    if (v == k) return v;
  return "error";
}

}  // namespace

StepStart queued_step_start(const fs::path& root, const std::string& chain_run_id,
                            const std::string& item_id) {
  StepStart out;
  auto rec = read_chain_record(root, chain_run_id);
  if (!rec) {
    out.error = "no queued chain " + chain_run_id + " (queue/chains/" + chain_run_id + "/chain.json)";
    return out;
  }
  auto ref = step_of_item(*rec, item_id);
  if (!ref) {
    out.error = "queue item '" + item_id + "' is not a step of chain " + chain_run_id;
    return out;
  }
  const json& step = (*rec)["steps"][ref->step];
  out.baseline_commit = branch_head((*rec)["repo"], (*rec)["branch"]);
  if (out.baseline_commit.empty()) out.baseline_commit = (*rec)["baseline_commit"];
  out.chain_link = {{"run_id", chain_run_id}, {"step_id", step["step_id"]}, {"role", step["role"]}};
  out.ok = true;
  return out;
}

QueuedChainDriver::QueuedChainDriver(fs::path root) : root_(std::move(root)) {}

const json* QueuedChainDriver::record(const std::string& run_id) {
  auto it = records_.find(run_id);
  if (it != records_.end()) return &it->second;
  auto rec = read_chain_record(root_, run_id);
  if (!rec) return nullptr;
  return &records_.emplace(run_id, std::move(*rec)).first->second;
}

std::vector<std::string> QueuedChainDriver::step_arguments(const queue::QueueItem& item) {
  if (item.parent.empty() || is_chain_item(item)) return {};
  return {"--chain", item.parent};
}

bool QueuedChainDriver::is_chain_item(const queue::QueueItem& item) {
  return item.kind == kChainItemKind;
}

queue::AttemptEnd QueuedChainDriver::on_attempt_end(const queue::QueueItem& item, queue::AttemptEnd end) {
  if (item.parent.empty() || end.status != "success") return end;
  const json* rec = record(item.parent);
  if (!rec) return end;
  auto ref = step_of_item(*rec, item.item_id);
  if (!ref) return end;
  const json& step = (*rec)["steps"][ref->step];
  if (step["kind"] != "task" || !item.current()) return end;
  Carried c = carry_forward(root_, item.current()->run_id, (*rec)["branch"], item.parent, step["step_id"]);
  if (!c.ok) {
    end.status = "error";
    end.reason = c.error;
  }
  return end;
}

int QueuedChainDriver::advance(queue::QueueBackend& queue) {
  int changes = 0;
  try {
    auto snapshot = queue.list();
    const queue::QueueState& st = snapshot->state;
    const int64_t now = core::now_ms();
    // Reading the waiting runs' manifests is the one cost here: a few times a second is soon enough. In
    // between, a queue that did not change has nothing new to judge.
    const bool read_decisions = now >= next_decisions_ms_;
    if (read_decisions) next_decisions_ms_ = now + 200;
    if (!read_decisions && seen_any_ && snapshot->version == seen_version_) return 0;
    seen_version_ = snapshot->version;
    seen_any_ = true;
    for (const auto& [id, chain_item] : st.items()) {
      if (!is_chain_item(chain_item) || chain_item.state == queue::ItemState::done) continue;
      const json* rec = record(id);
      if (!rec) continue;
      const json cancel = read_chain_cancel(root_, id);
      ChainProgress prog = progress_of(*rec, cancel, st);
      if (prog.settled) continue;
      const bool cancelling = prog.cancel_requested || chain_item.state == queue::ItemState::cancelled;
      const bool ending = !prog.ending.is_null() || cancelling;
      const std::string end_reason =
          cancelling ? std::string(kChainCancelledReason) + ": " +
                           (prog.cancel_reason.empty() ? chain_item.cancel_reason : prog.cancel_reason)
                     : std::string(kChainEndedReason) + ": " + core::text_of(prog.ending, "reason");
      for (const auto& sp : prog.steps)
        for (const auto& ip : sp.items) {
          if (!ip.item) continue;
          // The chain ended: what has not started never will.
          if (ending && ip.item->state == queue::ItemState::queued) {
            if (queue.cancel(ip.item_id, kChainActor, end_reason) == queue::CancelOutcome::cancelled)
              ++changes;
            continue;
          }
          // Cancelled: what runs is stopped too (the scheduler sends it SIGTERM; it seals cancelled).
          if (cancelling && ip.item->active() && !ip.item->cancel_requested) {
            if (queue.cancel(ip.item_id, kChainActor, end_reason) == queue::CancelOutcome::requested)
              ++changes;
            continue;
          }
          if (!ip.awaiting) continue;
          if (ending) {
            // Nobody needs this decision any more: denied by rule, so the run does not wait for one.
            control::decide(root_, ip.run_id, control::Decision::reject, control::rule(end_reason));
            if (queue.settle(ip.item_id, "cancelled", end_reason, "cp-host") == queue::Change::applied)
              ++changes;
            continue;
          }
          if (!read_decisions) continue;
          json m = step_manifest(root_, ip.run_id);
          if (!m.is_object() || core::text_of(m, "status") != "sealed")
            continue;  // still waiting for a person
          std::string verdict = core::text_of(m, "verdict"), reason = core::text_of(m, "reason");
          if (verdict == "success" && sp.kind == "task") {
            // Approved: the change goes onto the chain branch before anything waiting for it may start.
            Carried c = carry_forward(root_, ip.run_id, (*rec)["branch"], id, sp.step_id);
            if (!c.ok) {
              verdict = "error";
              reason = c.error;
            }
          }
          if (queue.settle(ip.item_id, chain_verdict(verdict), reason, "cp-host") == queue::Change::applied)
            ++changes;
        }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cp-host serve: chains: %s\n", e.what());
  }
  return changes;
}

queue::AttemptEnd QueuedChainDriver::seal(const queue::QueueItem& item, queue::QueueBackend& queue) {
  const std::string id = item.item_id;
  const json* rec = record(id);
  if (!rec)
    return {"error", "no queued chain record for " + id + " (queue/chains/" + id + "/chain.json)", ""};
  // Sealed before a crash cut the attempt short: its verdict stands.
  if (auto dir = store::find_run(root_, id)) {
    json m = core::read_json_file(*dir / "manifest.json");
    if (m.is_object() && core::text_of(m, "status") == "sealed")
      return {chain_verdict(core::text_of(m, "verdict")), core::text_of(m, "reason"), ""};
    return {"error", "the chain bundle " + id + " exists but was never sealed (a crash while it was written)",
            ""};
  }
  try {
    auto snapshot = queue.list();
    const json cancel = read_chain_cancel(root_, id);
    ChainProgress prog = progress_of(*rec, cancel, snapshot->state);
    ChainSpec spec = spec_of_record(*rec, root_);
    const std::string repo = (*rec)["repo"], branch = (*rec)["branch"], base = (*rec)["baseline_commit"];

    // The steps in the order they started (file order for those that never did).
    std::vector<const StepProgress*> order;
    for (const auto& sp : prog.steps)
      if (sp.kind != "handoff") order.push_back(&sp);
    std::stable_sort(order.begin(), order.end(), [](const StepProgress* a, const StepProgress* b) {
      if (a->started_at.empty() != b->started_at.empty()) return !a->started_at.empty();
      return a->started_at < b->started_at;
    });

    ChainEnd end;
    int allowed_failures = 0;
    std::map<std::string, json> marks;  // handoff step id -> its mark
    for (size_t i = 0; i < prog.steps.size(); ++i) {
      const StepProgress& sp = prog.steps[i];
      if (sp.kind != "handoff" || sp.state != "done") continue;
      json prev = nullptr;
      for (size_t k = i; k-- > 0;)
        if (prog.steps[k].kind != "handoff") {
          for (const auto& ip : prog.steps[k].items)
            if (!ip.run_id.empty()) prev = ip.run_id;
          break;
        }
      marks[sp.step_id] = handoff_mark(spec.steps[i], prev);
    }

    auto b = store::Bundle::create(root_, id, (*rec)["document"], [&] {
      json m = chain_manifest(spec, id, repo, base);
      m["created_at"] = (*rec)["created_at"];
      if (item.current()) m["queue"] = {{"item_id", id}, {"attempt", item.current()->attempt}};
      return m;
    }());
    auto& events = b->events();
    std::string first_start;
    for (const auto* sp : order)
      if (!sp->started_at.empty() && (first_start.empty() || sp->started_at < first_start))
        first_start = sp->started_at;
    b->update_manifest(
        {{"status", "running"}, {"started_at", first_start.empty() ? core::now_utc_iso() : first_start}});
    events.append("CHAIN_STARTED", {{"chain_id", spec.chain_id},
                                    {"steps", spec.steps.size()},
                                    {"repo", repo},
                                    {"baseline_commit", base},
                                    {"branch", branch},
                                    {"queued", true},
                                    {"item_id", id}});
    std::set<std::string> marked;
    auto mark_before = [&](size_t index) {
      size_t first = index;
      while (first > 0 && spec.steps[first - 1].kind == "handoff") --first;
      for (size_t h = first; h < index; ++h) {
        auto m = marks.find(spec.steps[h].id);
        if (m == marks.end() || !marked.insert(m->first).second) continue;
        events.append("CHAIN_HANDOFF_STEP_MARKED", m->second);
        end.handoffs.push_back(m->second);
      }
    };
    for (const StepProgress* sp : order) {
      const Step& st = spec.steps[sp->index];
      bool ran = false;
      for (const auto& ip : sp->items) ran = ran || !ip.run_id.empty();
      if (!ran) continue;
      mark_before(sp->index);
      json entry{{"step_id", st.id}, {"kind", st.kind}, {"role", st.role}, {"run_ids", json::array()}};
      json votes = json::array();
      for (size_t j = 0; j < sp->items.size(); ++j) {
        const ItemProgress& ip = sp->items[j];
        if (ip.run_id.empty()) continue;
        json m = step_manifest(root_, ip.run_id);
        events.append("CHAIN_STEP_STARTED",
                      {{"step_id", st.id},
                       {"kind", st.kind},
                       {"role", st.role},
                       {"contract", j < st.contracts.size() ? st.contracts[j].string() : ""},
                       {"baseline_commit", m.is_object() ? core::text_of(m, "baseline_commit") : ""},
                       {"run_id", ip.run_id},
                       {"item_id", ip.item_id},
                       {"at", ip.started_at}});
        entry["run_ids"].push_back(ip.run_id);
        if (!ip.settled) continue;
        events.append("CHAIN_STEP_FINISHED",
                      {{"step_id", st.id},
                       {"role", st.role},
                       {"run_id", ip.run_id},
                       {"status", m.is_object() ? core::text_of(m, "status") : "not_found"},
                       {"verdict", ip.status},
                       {"reason", ip.reason},
                       {"item_id", ip.item_id},
                       {"at", ip.finished_at}});
        if (st.kind == "review")
          votes.push_back({{"reviewer", j + 1},
                           {"run_id", ip.run_id},
                           {"verdict", ip.status},
                           {"approve", ip.status == "success"}});
        // A carried change, as the step's run records its promotion onto the chain branch.
        if (st.kind == "task" && ip.status == "success" && m.is_object() && m.contains("evidence") &&
            m["evidence"].is_object() && core::text_of(m["evidence"], "branch") == branch &&
            core::text_of(m["evidence"], "decision") == "promoted")
          events.append("CHAIN_BRANCH_ADVANCED", {{"step_id", st.id},
                                                  {"branch", branch},
                                                  {"commit", core::text_of(m["evidence"], "commit")},
                                                  {"run_id", ip.run_id}});
      }
      entry["verdict"] = sp->verdict.empty() ? "not_run" : sp->verdict;
      entry["reason"] = sp->reason;
      if (st.kind == "review" && sp->settled) {
        json q = quorum_evaluation(st, votes);
        events.append("CHAIN_QUORUM_EVALUATED", q);
        end.quorums.push_back(q);
        entry["quorum"] = q;
      }
      if (sp->settled) end.step_verdicts[st.id] = entry["verdict"];
      end.steps_report.push_back(entry);
      if (sp->passed) end.observed_roles.push_back(st.role);
      if (sp->settled && !sp->passed && sp->state != "not_run") ++allowed_failures;
    }
    mark_before(spec.steps.size());

    if (prog.cancel_requested || item.cancel_requested) {
      end.verdict = "cancelled";
      end.reason =
          prog.cancel_reason.empty() ? "the chain was cancelled" : "the chain was " + prog.cancel_reason;
      for (const StepProgress* sp : order)
        if (!sp->passed) {
          end.failed_step = {
              {"step_id", sp->step_id}, {"role", sp->role}, {"verdict", "cancelled"}, {"reason", end.reason}};
          for (const auto& ip : sp->items)
            if (!ip.run_id.empty()) end.failed_step["run_id"] = ip.run_id;
          break;
        }
    } else if (!prog.ending.is_null()) {
      end.verdict = chain_verdict(core::text_of(prog.ending, "verdict"));
      end.reason = core::text_of(prog.ending, "reason");
      end.failed_step = prog.ending;
    } else if (allowed_failures > 0) {
      end.reason =
          "every step passed but " + std::to_string(allowed_failures) + " allowed to fail (continue_on_fail)";
    }
    std::string head = branch_head(repo, branch);
    if (!head.empty() && head != base) end.final_commit = head;
    json extra{{"queue",
                {{"item_id", id},
                 {"origin", (*rec).value("origin", "")},
                 {"submitted_by", (*rec).value("submitted_by", "")}}}};
    seal_chain(root_, *b, spec, repo, base, branch, end, extra);
    return {end.verdict, end.reason, ""};
  } catch (const std::exception& e) {
    return {"error", std::string("cannot seal the chain bundle: ") + e.what(), ""};
  }
}

}  // namespace cp::chain
