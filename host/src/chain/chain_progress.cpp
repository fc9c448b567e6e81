#include "chain/chain_progress.hpp"

namespace cp::chain {

using nlohmann::json;
using queue::ItemState;

namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

ItemProgress item_progress(const std::string& id, const queue::QueueState& st) {
  ItemProgress p;
  p.item_id = id;
  p.item = st.find(id);
  if (!p.item) {
    p.state = "unknown";
    p.settled = true;  // gone from the live queue: it ended long ago
    return p;
  }
  const queue::QueueItem& it = *p.item;
  p.state = queue::to_string(it.state);
  if (const queue::Attempt* a = it.current()) {
    p.run_id = a->run_id;
    p.started_at = a->started_at;
    p.finished_at = a->finished_at;
    p.started = !a->started_at.empty() || !a->run_id.empty();
  }
  p.awaiting = it.awaiting_decision();
  p.decided = it.decided;
  p.settled = it.terminal() && !p.awaiting;
  p.status = it.terminal() ? it.status : "";
  p.reason = it.terminal() ? it.reason : "";
  // Cancelled by the chain's own end or cancel, or by the scheduler because a dependency failed: only the
  // host's own actors. A person's cancel of a step (whatever its reason says) ends the chain.
  p.ended_by_chain =
      it.cancel_requested && starts_with(it.cancel_by, queue::kHostActor) &&
      (starts_with(it.cancel_reason, kChainCancelledReason) ||
       starts_with(it.cancel_reason, kChainEndedReason) || starts_with(it.cancel_reason, "dependency "));
  return p;
}

}  // namespace

ChainProgress progress_of(const json& record, const json& cancel, const queue::QueueState& st) {
  ChainProgress out;
  out.settled = true;
  if (cancel.is_object()) {
    out.cancel_requested = true;
    out.cancel_reason =
        "cancelled by " + cancel.value("by", "?") +
        (cancel.value("reason", "").empty() ? std::string() : ": " + cancel.value("reason", ""));
  }
  if (const queue::QueueItem* own = st.find(record.value("run_id", ""))) {
    if (own->state == ItemState::cancelled || own->cancel_requested) {
      out.cancel_requested = true;
      out.cancel_reason = own->cancel_reason;
    }
  }
  const json& steps = record["steps"];
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    StepProgress sp;
    sp.index = i;
    sp.step_id = s["step_id"];
    sp.kind = s["kind"];
    sp.role = s["role"];
    for (const auto& id : s["items"]) {
      ItemProgress ip = item_progress(id.get<std::string>(), st);
      if (ip.item && ip.item->cancel_requested &&
          starts_with(ip.item->cancel_reason, kChainCancelledReason)) {
        out.cancel_requested = true;
        if (out.cancel_reason.empty()) out.cancel_reason = ip.item->cancel_reason;
      }
      out.started = out.started || ip.started;
      out.settled = out.settled && ip.settled;
      sp.items.push_back(std::move(ip));
    }
    out.steps.push_back(std::move(sp));
  }

  // Each step's state and verdict, and the first failure (in the chain's order) that ends the chain.
  for (auto& sp : out.steps) {
    const json& s = steps[sp.index];
    if (sp.kind == "handoff") continue;
    bool any_running = false, any_awaiting = false, any_queued = false, any_started = false,
         all_settled = true;
    bool all_by_chain = true, any_cancelled = false;
    for (const auto& ip : sp.items) {
      any_running = any_running || (ip.item && ip.item->active());
      any_awaiting = any_awaiting || ip.awaiting;
      any_queued = any_queued || (ip.item && ip.item->state == ItemState::queued);
      any_started = any_started || ip.started;
      all_settled = all_settled && ip.settled;
      bool cancelled = ip.item && ip.item->state == ItemState::cancelled;
      any_cancelled = any_cancelled || cancelled;
      all_by_chain = all_by_chain && cancelled && ip.ended_by_chain;
      if (!ip.started_at.empty() && (sp.started_at.empty() || ip.started_at < sp.started_at))
        sp.started_at = ip.started_at;
      if (!ip.finished_at.empty() && ip.finished_at > sp.finished_at) sp.finished_at = ip.finished_at;
      if (ip.status == "success") ++sp.approvals;
    }
    sp.settled = all_settled;
    if (any_running)
      sp.state = "running";
    else if (any_awaiting)
      sp.state = "awaiting_approval";
    else if (any_queued)
      sp.state = "queued";  // or pending: decided below, once every step's outcome is known
    else if (all_settled && all_by_chain && !any_started)
      sp.state = "not_run";
    else if (all_settled && any_cancelled && !any_started)
      sp.state = "cancelled";
    else if (all_settled)
      sp.state = "done";
    if (!all_settled) continue;
    const bool may_fail = s.value("continue_on_fail", false);
    if (sp.kind == "task") {
      const ItemProgress& ip = sp.items.at(0);
      sp.verdict = ip.status.empty() ? (ip.item ? "" : "unknown") : ip.status;
      sp.reason = ip.reason;
      sp.passed = ip.status == "success";
      if (sp.passed || sp.state == "not_run" || !out.ending.is_null()) continue;
      if (ip.ended_by_chain && !any_started) continue;
      // continue_on_fail lets a step's failure pass, never a person's refusal: a rejected (or overdue)
      // approval ends the chain.
      if (may_fail && ip.status != "cancelled" && !(ip.decided && !ip.ended_by_chain)) continue;
      out.ending = {{"step_id", sp.step_id},
                    {"role", sp.role},
                    {"run_id", ip.run_id},
                    {"verdict", sp.verdict},
                    {"reason", "step " + sp.step_id + " (" + sp.role + ") ended " + sp.verdict +
                                   (ip.reason.empty() ? std::string() : ": " + ip.reason)}};
    } else {
      const int quorum = s.value("quorum", static_cast<int>(sp.items.size()));
      const bool met = sp.approvals >= quorum;
      sp.verdict = met ? "success" : (all_by_chain ? "cancelled" : "failure");
      sp.reason = std::to_string(sp.approvals) + " of " + std::to_string(sp.items.size()) +
                  " reviewers approve, " + std::to_string(quorum) + " needed";
      sp.passed = met;
      if (met || sp.state == "not_run" || !out.ending.is_null() || may_fail) continue;
      std::string last_run;
      for (const auto& ip : sp.items)
        if (!ip.run_id.empty()) last_run = ip.run_id;
      std::string why = "step " + sp.step_id + " (" + sp.role + "): reviewer quorum not met (" +
                        std::to_string(sp.approvals) + " of " + std::to_string(quorum) +
                        " required approvals)";
      out.ending = {{"step_id", sp.step_id},
                    {"role", sp.role},
                    {"run_id", last_run},
                    {"verdict", "failure"},
                    {"reason", why}};
    }
  }
  // A waiting step is pending while a step it depends on has not passed; whether it may start now is the
  // queue's to say (its waiting_on).
  for (auto& sp : out.steps) {
    if (sp.state != "queued") continue;
    for (const auto& dep : steps[sp.index]["depends_on"])
      for (const auto& other : out.steps)
        if (other.step_id == dep && !other.settled) sp.state = "pending";
  }
  // Handoffs: done once the step before them passed; not_run when the chain ended before.
  for (size_t i = 0; i < out.steps.size(); ++i) {
    auto& sp = out.steps[i];
    if (sp.kind != "handoff") continue;
    const StepProgress* before = nullptr;
    for (size_t k = i; k-- > 0;)
      if (out.steps[k].kind != "handoff") {
        before = &out.steps[k];
        break;
      }
    bool ended = !out.ending.is_null() || out.cancel_requested;
    sp.state = before && before->passed                 ? "done"
               : (ended || (before && before->settled)) ? "not_run"
                                                        : "pending";
  }
  return out;
}

}  // namespace cp::chain
