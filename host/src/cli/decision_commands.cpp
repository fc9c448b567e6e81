// The human decisions on runs: `cp-host approve|reject RUN`, `cp-host approvals list`, and
// `cp-host evidence promote|reject RUN`. The deciding OS user is recorded as who; the REST API records the
// token instead. Exit codes: 0 the decision was taken, 1 it was refused (the message says why), 2 usage,
// 3 internal error, 11 refused because this process belongs to a run (control/run_origin.hpp): whatever a
// run's processes can reach, they never decide about a run.
#include "cli/commands.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_commands.hpp"
#include "cli/shared_answers.hpp"
#include "control/actor.hpp"
#include "control/approvals.hpp"
#include "control/evidence.hpp"
#include "control/run_origin.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

using nlohmann::json;

int decision_exit(control::DecisionResult::Outcome o) {
  using O = control::DecisionResult::Outcome;
  switch (o) {
    case O::recorded:
    case O::approved:
    case O::rejected:
      return kOk;
    case O::invalid:
      return kUsage;
    case O::from_run:
      return kFromRun;
    case O::error:
      return kInternal;
    default:
      return kInvalid;
  }
}

namespace {

int print_decision(const control::DecisionResult& r, bool as_json, const char* cmd) {
  int code = decision_exit(r.outcome);
  if (as_json) {
    json j{{"outcome", control::outcome_name(r.outcome)}, {"message", r.message}, {"exit_code", code}};
    if (r.manifest.is_object()) {
      j["status"] = r.manifest.value("status", "");
      if (r.manifest.contains("verdict")) j["verdict"] = r.manifest["verdict"];
      if (r.manifest.contains("approval")) j["approval"] = r.manifest["approval"];
    }
    std::cout << j.dump(2) << "\n";
  } else {
    (code == kOk ? std::cout : std::cerr)
        << (code == kOk ? "" : std::string(cmd) + ": ") << r.message << "\n";
  }
  return code;
}

// A decision sent to a server is refused here too when this process is part of a run: the server checks
// its own process, not the caller's, and a run may have inherited CP_HOST_URL and a token. kFromRun after
// saying why, else -1.
int refused_from_run(const char* cmd, bool as_json) {
  const std::string why = control::refusal_from_run(control::os_user("human", ""));
  if (why.empty()) return -1;
  if (as_json)
    std::cout << json{{"outcome", "from_run"}, {"message", why}, {"exit_code", kFromRun}}.dump(2) << "\n";
  else
    std::cerr << cmd << ": " << why << "\n";
  return kFromRun;
}

}  // namespace

void add_decisions(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string run_id, reason, branch;
    bool json = false, god = false;
  };
  auto o = std::make_shared<Opts>();

  auto* approve = app.add_subcommand(
      "approve",
      "Approve a run awaiting approval. With enough distinct approvers (the pack's approval.approvers, "
      "default "
      "1) the run seals as success with a proof pack; past the pack's approval deadline it is denied instead "
      "(default-deny). Exit 0 decided or counted, 1 refused, 2 usage, 3 internal error, 11 asked from inside "
      "a run.");
  approve->add_option("run", o->run_id, "Run id")->required();
  approve->add_option("--reason", o->reason, "Why (recorded with the decision)");
  approve->add_flag("--god-mode", o->god,
                    "Decide alone, whatever the number of approvers the pack asks for; needs --reason and is "
                    "recorded as god_mode");
  approve->add_flag("--json", o->json, "Machine-readable output");
  approve->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      if (!g.server.empty()) {
        if (int refused = refused_from_run("cp-host approve", o->json); refused >= 0) return refused;
        return remote_decide(g, o->run_id, o->god ? "god-mode-approve" : "approve", o->reason, o->json);
      }
      auto actor = control::os_user(o->god ? "god_mode" : "human", o->reason);
      return print_decision(control::decide(g.root, o->run_id, control::Decision::approve, actor), o->json,
                            "cp-host approve");
    };
  });

  auto* reject = app.add_subcommand(
      "reject",
      "Reject a run awaiting approval: it seals as denied with an incident pack and its worktree is "
      "discarded. Exit 0 rejected, 1 refused, 2 usage, 3 internal error, 11 asked from inside a run.");
  reject->add_option("run", o->run_id, "Run id")->required();
  reject->add_option("--reason", o->reason, "Why (recorded with the decision)");
  reject->add_flag("--json", o->json, "Machine-readable output");
  reject->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      if (!g.server.empty()) {
        if (int refused = refused_from_run("cp-host reject", o->json); refused >= 0) return refused;
        return remote_decide(g, o->run_id, "reject", o->reason, o->json);
      }
      return print_decision(
          control::decide(g.root, o->run_id, control::Decision::reject, control::os_user("human", o->reason)),
          o->json, "cp-host reject");
    };
  });

  auto* approvals = app.add_subcommand("approvals", "Runs waiting for a human decision");
  approvals->require_subcommand(1);
  auto* list = approvals->add_subcommand(
      "list", "The runs awaiting approval, oldest request first. Runs past their deadline are denied first.");
  list->add_flag("--json", o->json, "Machine-readable output");
  list->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      if (!g.server.empty()) return remote_approvals_list(g, o->json);
      json pending = control::list_pending(g.root);
      if (o->json) {
        std::cout << json{{"approvals", pending}, {"count", pending.size()}}.dump(2) << "\n";
        return kOk;
      }
      print_approvals(pending);
      return kOk;
    };
  });

  auto* evidence = app.add_subcommand("evidence", "Decide what becomes of a successful run's change");
  evidence->require_subcommand(1);
  auto* promote = evidence->add_subcommand(
      "promote",
      "Apply the run's artifacts/diff.patch onto BRANCH of the run's repository as one commit (a new branch "
      "starts at the run's baseline commit). No working tree is touched; refused when the patch does not "
      "apply cleanly, the branch is checked out somewhere, or the run is not sealed success. Exit 0 "
      "promoted, "
      "1 refused, 3 internal error, 11 asked from inside a run.");
  promote->add_option("run", o->run_id, "Run id")->required();
  promote->add_option("--branch", o->branch, "Target branch (created when missing)")->required();
  promote->add_option("--reason", o->reason, "Why (recorded, and in the commit message)");
  promote->add_flag("--json", o->json, "Machine-readable output");
  auto* ereject = evidence->add_subcommand(
      "reject",
      "Discard the run's change: its kept worktree is removed, the decision recorded. Exit 0 rejected, 1 "
      "refused, 3 internal error, 11 asked from inside a run.");
  ereject->add_option("run", o->run_id, "Run id")->required();
  ereject->add_option("--reason", o->reason, "Why (recorded)");
  ereject->add_flag("--json", o->json, "Machine-readable output");
  auto finish = [o](const control::EvidenceResult& r) {
    using O = control::EvidenceResult::Outcome;
    int code = r.outcome == O::promoted || r.outcome == O::rejected ? kOk
               : r.outcome == O::error                              ? kInternal
               : r.outcome == O::from_run                           ? kFromRun
                                                                    : kInvalid;
    if (o->json) {
      json j{{"outcome", r.outcome == O::promoted     ? "promoted"
                         : r.outcome == O::rejected   ? "rejected"
                         : r.outcome == O::refused    ? "refused"
                         : r.outcome == O::unverified ? "unverified"
                         : r.outcome == O::not_found  ? "not_found"
                         : r.outcome == O::from_run   ? "from_run"
                                                      : "error"},
             {"message", r.message},
             {"exit_code", code}};
      if (!r.evidence.is_null()) j["evidence"] = r.evidence;
      std::cout << j.dump(2) << "\n";
    } else {
      (code == kOk ? std::cout : std::cerr) << (code == kOk ? "" : "cp-host evidence: ") << r.message << "\n";
    }
    return code;
  };
  promote->callback([&g, &run, o, finish] {
    run = [&g, o, finish]() -> int {
      return finish(control::promote(g.root, o->run_id, o->branch, control::os_user("human", o->reason)));
    };
  });
  ereject->callback([&g, &run, o, finish] {
    run = [&g, o, finish]() -> int {
      return finish(control::reject_evidence(g.root, o->run_id, control::os_user("human", o->reason)));
    };
  });
}

}  // namespace cp::cli
