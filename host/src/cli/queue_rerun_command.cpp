// `cp-host queue from-run RUN [--preview]` and `cp-host queue replay RUN`: an earlier run's compiled
// contract queued again (control/run_requeue.hpp), the twins of POST /api/queue/from-run/{id}[/preview]
// and POST /api/runs/{id}/replay. `cp-host serve` runs the item.
#include "cli/commands.hpp"
#include "control/run_requeue.hpp"
#include "queue/queue_service.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <pwd.h>
#include <unistd.h>

#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

struct RerunOpts {
  std::string run_id, repo, run_after, deadline, start_by;
  int priority = -1;
  std::vector<std::string> after;
  bool json = false, preview = false;
};

std::string submitter() {
  if (const passwd* pw = ::getpwuid(::geteuid())) return std::string("os:") + pw->pw_name;
  return "os:uid" + std::to_string(::geteuid());
}

int rerun(const Globals& g, const RerunOpts& o, control::RequeueMode mode) {
  control::RequeueRequest req;
  req.run_id = o.run_id;
  req.mode = mode;
  req.repo = o.repo;
  if (o.priority >= 0) req.priority = o.priority;
  req.depends_on = o.after;
  req.run_after = o.run_after;
  req.deadline = o.deadline;
  req.start_by = o.start_by;
  req.submitted_by = submitter();
  using O = control::RequeueResult::Outcome;
  control::RequeueResult r;
  if (o.preview) {
    r = control::preview_requeue(g.root, g.plugins_dir, req);
  } else {
    queue::QueueService svc(g.root, nullptr);
    r = control::requeue_run(svc, g.root, req);
  }
  const char* cmd = mode == control::RequeueMode::replay ? "cp-host queue replay" : "cp-host queue from-run";
  if (r.outcome != O::queued && r.outcome != O::previewed) {
    std::cerr << cmd << ": " << r.message << "; nothing was queued.\n";
    return r.outcome == O::error ? kInternal : r.outcome == O::invalid ? kUsage : kInvalid;
  }
  if (o.json) {
    std::cout << r.body.dump(2) << "\n";
  } else if (o.preview) {
    const json& p = r.body;
    std::cout << "would run  " << p.value("task_id", "") << " again (" << p.value("mode", "") << " of "
              << p.value("source_run", "") << ")\n"
              << "contract   " << p.value("contract_sha256", "") << "\n"
              << "runner     " << p.value("runner", "") << "   pack " << p.value("pack", "") << "\n"
              << "repo       " << p.value("repo", "") << "\n"
              << "baseline   " << p.value("baseline_ref", "") << " = " << p.value("baseline_commit", "")
              << "\n"
              << "would_run  "
              << (p["plan"].value("would_run", false) ? "yes" : "no: " + p["plan"].value("refusal", ""))
              << "\n(the execution plan: --json)\n";
  } else {
    std::cout << r.message << "\n";
  }
  return kOk;
}

void options(CLI::App* c, RerunOpts& o) {
  c->add_option("run", o.run_id, "Id of the earlier run")->required();
  c->add_option("--repo", o.repo, "Repository to run in (default: the earlier run's)");
  c->add_option("--priority", o.priority, "0..9, higher runs first (default: the contract's, else 5)")
      ->check(CLI::Range(0, 9));
  c->add_option("--after", o.after, "Run only after this queue item ended in success (repeatable)");
  c->add_option("--run-after", o.run_after, "Not before this time (ISO-8601 UTC, e.g. 2026-11-25T10:00:00Z)");
  c->add_option("--deadline", o.deadline, "Should have finished by this time (SLA)");
  c->add_option("--start-by", o.start_by, "Should have started by this time (SLA)");
  c->add_flag("--json", o.json, "Print the queued item (or the preview) as JSON");
}

}  // namespace

void add_queue_rerun(CLI::App& queue, Globals& g, Runner& run) {
  auto fo = std::make_shared<RerunOpts>();
  auto* from = queue.add_subcommand(
      "from-run",
      "Queue an earlier run's contract again: the compiled contract its bundle holds (checked against the "
      "sha256 its manifest recorded, so the new run records the same contract_sha256), from the contract's "
      "rollback.baseline_ref as it resolves when the item starts (`queue replay` starts from the earlier "
      "run's baseline commit instead). The earlier bundle must verify. Exit 0 queued (or previewed), 1 "
      "refused (no such run, a chain, a bundle that does not verify, a baseline that does not resolve, a "
      "missing dependency), 2 a bad option, 3 internal error");
  options(from, *fo);
  from->add_flag("--preview", fo->preview,
                 "Queue nothing; show what would run: the contract sha256, runner, pack, repository, the "
                 "baseline it resolves to now and the execution plan (as `cp-host intake preview`)");
  from->callback(
      [&g, &run, fo] { run = [&g, fo] { return rerun(g, *fo, control::RequeueMode::from_run); }; });

  auto ro = std::make_shared<RerunOpts>();
  auto* replay = queue.add_subcommand(
      "replay",
      "Queue a replay of an earlier run: `cp-host replay` run by `cp-host serve` (the compiled contract from "
      "the earlier run's baseline commit; the new run records replay_of and gets the compare report). Exit "
      "codes as `queue from-run`");
  options(replay, *ro);
  replay->callback(
      [&g, &run, ro] { run = [&g, ro] { return rerun(g, *ro, control::RequeueMode::replay); }; });
}

}  // namespace cp::cli
