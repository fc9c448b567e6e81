// `cp-host run CONTRACT`: one contract, end to end, into a sealed run bundle. SIGINT/SIGTERM cancel the
// run (its process groups are stopped) and seal it as cancelled.
#include "chain/chain_driver.hpp"
#include "cli/colour.hpp"
#include "cli/commands.hpp"
#include "cli/diagnostic_output.hpp"
#include "cli/json_fields.hpp"
#include "cli/read_views.hpp"
#include "control/run_compare.hpp"
#include "run/engine.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

std::atomic<bool> g_interrupt{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int) {
  g_interrupt.store(true);
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = &on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A parent (serve's scheduler) may start us with them blocked so that a cancel during our start is not
  // lost or fatal: it is delivered to the handler now.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &stop, nullptr);
}

void print_summary(const run::RunOutcome& o, int code) {
  std::cout << "run      " << o.run_id << "\n"
            << "status   " << o.status << "\n";
  if (!o.verdict.empty()) std::cout << "verdict  " << paint_verdict(o.verdict) << "\n";
  // The reason may quote what the agent said (a failed turn's message): never raw to the terminal.
  std::cout << "reason   " << terminal_safe(o.reason) << "\n";
  std::cout << "gates   ";
  const json& gates = o.manifest.value("gates", json::array());
  if (gates.empty()) std::cout << " (none ran)";
  for (const auto& g : gates) std::cout << " " << text_of(g, "gate_id") << "=" << text_of(g, "verdict");
  std::cout << "\n";
  auto changes =
      o.manifest.contains("reports") && o.manifest["reports"].contains("diff") ? "artifacts/diff.patch" : "-";
  std::cout << "diff     " << changes << "\n"
            << "bundle   " << o.bundle_dir.string() << "\n"
            << "exit     " << code << "\n";
}

int report_outcome(const run::RunOutcome& out, bool as_json, const std::string& cmd,
                   const std::string& check) {
  int code = run::exit_code_for(out);
  if (out.stage == run::RunOutcome::Stage::invalid) {
    print_diagnostics(out.diagnostics);
    std::cerr << cmd << ": " << out.error << "; nothing was run or written. Fix it and check with " << check
              << ".\n";
  } else if (out.stage == run::RunOutcome::Stage::internal) {
    std::cerr << cmd << ": " << terminal_safe(out.error) << "\n";
  }
  if (as_json) {
    json j{{"exit_code", code},
           {"stage", out.stage == run::RunOutcome::Stage::sealed    ? "sealed"
                     : out.stage == run::RunOutcome::Stage::invalid ? "invalid"
                                                                    : "internal"}};
    if (!out.run_id.empty()) j["run_id"] = out.run_id;
    if (!out.bundle_dir.empty()) j["bundle"] = out.bundle_dir.string();
    if (out.stage == run::RunOutcome::Stage::sealed)
      j["manifest"] = out.manifest;
    else
      j["error"] = out.error;
    if (!out.diagnostics.empty()) j["diagnostics"] = contract::diagnostics_json(out.diagnostics);
    std::cout << j.dump(2) << "\n";
  } else if (out.stage == run::RunOutcome::Stage::sealed) {
    print_summary(out, code);
  }
  return code;
}

}  // namespace

void add_run(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string contract;
    std::string repo = ".";
    bool json = false;
    bool quiet = false;
    bool keep = false;
    std::string run_id, queue_item, from_run, chain;
    int attempt = 0;
    std::vector<std::string> hide;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "run",
      "Run a task contract: validate and compile it, make a git worktree of the repo at "
      "rollback.baseline_ref, run "
      "its runner, collect the diff, run the pack's gates and seal a run bundle under "
      "<root>/.runtime-cache/cortexpilot/runs/<run_id>/.\n"
      "Exit codes: 0 success, 2 invalid contract or usage (nothing written), 3 internal error, 4 failure, "
      "5 denied (a rule was broken), 6 timeout, 7 cancelled, 8 error, 9 awaiting approval.");
  auto* contract = cmd->add_option("contract", o->contract, "Task contract JSON file");
  auto* from_run = cmd->add_option(
      "--from-run", o->from_run,
      "Instead of a contract file, run the compiled contract of this earlier run again (its bundle's "
      "contract.json, checked against the sha256 its manifest recorded, so the new run records the same "
      "contract_sha256), from the contract's rollback.baseline_ref as it resolves now (`cp-host replay` "
      "starts from the earlier run's baseline commit instead). The manifest records from_run");
  contract->excludes(from_run);
  cmd->add_option("--repo", o->repo,
                  "Git repository the run works on (default: .); it is never modified, a "
                  "worktree is made instead");
  cmd->add_flag("--json", o->json,
                "Print the outcome as JSON (progress lines still go to stderr unless --quiet)");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress lines");
  cmd->add_flag("--keep-worktree", o->keep,
                "Keep the run's worktree after sealing (default: per rollback.strategy)");
  // Set by `cp-host serve` for queue items; hidden from --help because users have no reason to pick ids.
  cmd->add_option("--run-id", o->run_id)->group("");
  cmd->add_option("--queue-item", o->queue_item)->group("");
  cmd->add_option("--attempt", o->attempt)->group("");
  // A step of a queued chain (chain/chain_queue.hpp): starts from the chain branch, linked to the chain.
  cmd->add_option("--chain", o->chain)->group("");
  cmd->add_option("--hide", o->hide,
                  "A file or folder the run's sandbox hides from it, on top of the runtime root and the "
                  "repository (repeatable; `serve` hides its token file this way)");
  cmd->callback([&g, &run, o] {
    if (o->contract.empty() == o->from_run.empty())
      throw CLI::ValidationError("run", "name a contract file, or an earlier run with --from-run");
    run = [&g, o]() -> int {
      install_stop_handlers();
      run::RunRequest req;
      req.contract_path = o->contract;
      req.from_run = o->from_run;
      req.repo = o->repo;
      req.root = g.root;
      req.plugins_dir = g.plugins_dir;
      req.interrupt = &g_interrupt;
      req.keep_worktree = o->keep;
      req.run_id = o->run_id;
      req.queue_item_id = o->queue_item;
      req.attempt = o->attempt;
      if (!o->chain.empty()) {
        chain::StepStart start = chain::queued_step_start(g.root, o->chain, o->queue_item);
        if (!start.ok) {
          std::cerr << "cp-host run: " << start.error << std::endl;
          return kUsage;
        }
        req.baseline_override = start.baseline_commit;
        req.chain_link = start.chain_link;
      }
      for (const auto& h : o->hide)
        req.hidden_paths.push_back(std::filesystem::absolute(h).lexically_normal());
      if (!o->quiet)
        req.progress = [](const std::string& line) { std::cerr << "· " << terminal_safe(line) << std::endl; };
      run::RunOutcome out = run::run_contract(req);
      return report_outcome(out, o->json, "cp-host run",
                            o->from_run.empty() ? "`cp-host validate " + o->contract + "`"
                                                : "`cp-host runs verify " + o->from_run + "`");
    };
  });
}

void add_replay(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string run_id, repo;
    bool json = false, quiet = false, no_compare = false;
    std::string new_run_id, queue_item;
    int attempt = 0;
    std::vector<std::string> hide;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "replay",
      "Run the compiled contract of an earlier run again (contract.json of its bundle, checked against the "
      "sha256 its manifest recorded), from the same baseline commit, as a new run that records replay_of. "
      "Then compares the two into reports/run_compare_report.json of the new run.\n"
      "Exit codes: those of `cp-host run`.");
  cmd->add_option("run", o->run_id, "Id of the run to replay")->required();
  cmd->add_option("--repo", o->repo, "Repository to replay in (default: the earlier run's)");
  cmd->add_flag("--json", o->json, "Print the outcome as JSON");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress lines");
  cmd->add_flag("--no-compare", o->no_compare, "Do not write the compare report");
  // Set by `cp-host serve` for queued replays (POST /api/runs/{id}/replay, `cp-host queue replay`).
  cmd->add_option("--run-id", o->new_run_id)->group("");
  cmd->add_option("--queue-item", o->queue_item)->group("");
  cmd->add_option("--attempt", o->attempt)->group("");
  cmd->add_option("--hide", o->hide,
                  "A file or folder the run's sandbox hides from it, on top of the runtime root and the "
                  "repository (repeatable)");
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      install_stop_handlers();
      run::RunRequest req;
      req.replay_of = o->run_id;
      req.run_id = o->new_run_id;
      req.queue_item_id = o->queue_item;
      req.attempt = o->attempt;
      for (const auto& h : o->hide)
        req.hidden_paths.push_back(std::filesystem::absolute(h).lexically_normal());
      if (!o->repo.empty()) {
        req.repo = o->repo;
        req.repo_given = true;
      }
      req.root = g.root;
      req.plugins_dir = g.plugins_dir;
      req.interrupt = &g_interrupt;
      if (!o->quiet)
        req.progress = [](const std::string& line) { std::cerr << "· " << terminal_safe(line) << std::endl; };
      run::RunOutcome out = run::run_contract(req);
      if (out.stage == run::RunOutcome::Stage::sealed && !o->no_compare) {
        auto cmp = control::compare_runs(g.root, o->run_id, out.run_id);
        if (cmp.ok && !o->quiet)
          std::cerr << "· compared with " << o->run_id << ": verdict "
                    << cmp.report["verdict"]["a"].get<std::string>() << " -> "
                    << cmp.report["verdict"]["b"].get<std::string>()
                    << (cmp.report["diff_stats"]["same_patch"].get<bool>() ? ", same patch"
                                                                           : ", different patch")
                    << " (reports/run_compare_report.json)" << std::endl;
        if (!cmp.ok) std::cerr << "cp-host replay: cannot compare the runs: " << cmp.message << "\n";
      }
      return report_outcome(out, o->json, "cp-host replay", "the bundle of " + o->run_id);
    };
  });
}

}  // namespace cp::cli
