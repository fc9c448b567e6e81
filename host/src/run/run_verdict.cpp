// How a run's verdict and cp-host run's exit code follow from what happened.
#include "run/engine.hpp"

namespace cp::run {

std::pair<std::string, std::string> decide_verdict(const VerdictInputs& in) {
  for (const auto& g : in.gates)
    // A policy gate's failure means the run broke a rule, not merely that its work is not good enough.
    if (g.required && g.verdict == "fail" && g.policy) return {"denied", "gate " + g.id + " failed"};
  if (in.runner_status == "denied")
    return {"denied", "the runner refused a command the policy does not allow"};
  if (in.interrupted) return {"cancelled", "cp-host received a stop signal"};
  if (in.deadline_hit) return {"timeout", "the contract's wall time ran out"};
  if (in.runner_status == "timeout") return {"timeout", "a runner command timed out"};
  if (in.runner_status == "cancelled") return {"cancelled", "the runner was cancelled"};
  for (const auto& g : in.gates)
    if (g.required && (g.verdict == "error" || (g.verdict == "skipped" && in.runner_status == "completed")))
      return {"error", "gate " + g.id + " could not judge the run (" + g.verdict + ")"};
  if (in.runner_status == "error") return {"error", "the runner failed"};
  if (in.runner_status != "completed" && in.runner_status != "failed")
    return {"error", "the runner reported an unknown status '" + in.runner_status + "'"};
  if (in.runner_status == "failed") return {"failure", "a runner command failed"};
  for (const auto& g : in.gates)
    if (g.required && g.verdict == "fail") return {"failure", "gate " + g.id + " failed"};
  return {"success", "the runner completed and every required gate passed"};
}

int exit_code_for(const RunOutcome& o) {
  switch (o.stage) {
    case RunOutcome::Stage::invalid:
      // As every command: a document checked and found wrong is 1, a path or argument that is wrong is 2.
      // A run named that is not there (or does not verify) is a lookup that found nothing: 1 as well.
      return o.diagnostics.empty() && !o.not_found ? 2 : 1;
    case RunOutcome::Stage::internal:
      return 3;
    case RunOutcome::Stage::sealed:
      break;
  }
  if (o.status == "awaiting_approval") return 9;
  return exit_code_for_verdict(o.verdict);
}

int exit_code_for_verdict(const std::string& verdict) {
  if (verdict == "success") return 0;
  if (verdict == "failure") return 4;
  if (verdict == "denied") return 5;
  if (verdict == "timeout") return 6;
  if (verdict == "cancelled") return 7;
  return 8;  // error, or anything unexpected
}

}  // namespace cp::run
