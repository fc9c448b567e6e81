// `cp-host chain run CHAIN`: a task chain, step by step, into a chain bundle (see chain/chain_runner.hpp).
// Exit codes as `cp-host run`: 0 success, 2 invalid chain (nothing run), 3 internal error, 4 failure
// (a step failed or a quorum was missed), 5 denied, 6 timeout, 7 cancelled, 8 error.
#include "chain/chain_runner.hpp"
#include "cli/commands.hpp"
#include "cli/diagnostic_output.hpp"
#include "run/engine.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

std::atomic<bool> g_chain_interrupt{false};

extern "C" void on_chain_signal(int) {
  g_chain_interrupt.store(true);
}

int chain_exit(const chain::ChainOutcome& o) {
  if (o.stage == chain::ChainOutcome::Stage::invalid) return kUsage;
  if (o.stage == chain::ChainOutcome::Stage::internal) return kInternal;
  return run::exit_code_for_verdict(o.verdict);
}

}  // namespace

void add_chain(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string chain, repo = ".";
    bool json = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* chain = app.add_subcommand("chain", "Task chains: contracts for roles, run in order with handoffs");
  chain->require_subcommand(1);
  auto* cmd = chain->add_subcommand(
      "run",
      "Run a task chain (schemas/task_chain.schema.json): each task or reviewer step is a full run with its "
      "own "
      "bundle; a step's change is committed onto branch cp-chain/<chain run id> and the next step starts "
      "there. Writes a chain bundle with reports/chain_report.json (lifecycle, quorum outcomes, step "
      "verdicts). A failed step or a missed quorum stops the chain with an incident pack naming the step.\n"
      "Exit codes: 0 success, 2 invalid chain (nothing run), 3 internal error, 4 failure, 5 denied, "
      "6 timeout, 7 cancelled, 8 error.");
  cmd->add_option("chain", o->chain, "Task chain JSON file")->required();
  cmd->add_option("--repo", o->repo,
                  "Git repository the steps work on (default: .); only the chain branch moves");
  cmd->add_flag("--json", o->json, "Print the outcome (with the chain report) as JSON");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress lines");
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      struct sigaction sa {};
      sa.sa_handler = &on_chain_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      sigaction(SIGINT, &sa, nullptr);
      sigaction(SIGTERM, &sa, nullptr);
      chain::ChainRequest req;
      req.chain_path = o->chain;
      req.repo = o->repo;
      req.root = g.root;
      req.plugins_dir = g.plugins_dir;
      req.interrupt = &g_chain_interrupt;
      if (!o->quiet) req.progress = [](const std::string& l) { std::cerr << "· " << l << std::endl; };
      auto out = chain::run_chain(req);
      int code = chain_exit(out);
      if (out.stage == chain::ChainOutcome::Stage::invalid) {
        print_diagnostics(out.diagnostics);
        std::cerr << "cp-host chain run: " << out.error << "; nothing was run.\n";
      } else if (out.stage == chain::ChainOutcome::Stage::internal) {
        std::cerr << "cp-host chain run: " << out.error << "\n";
      }
      if (o->json) {
        json j{{"exit_code", code}};
        if (!out.run_id.empty()) j["run_id"] = out.run_id;
        if (!out.bundle_dir.empty()) j["bundle"] = out.bundle_dir.string();
        if (out.stage == chain::ChainOutcome::Stage::sealed)
          j["report"] = out.report;
        else
          j["error"] = out.error;
        if (!out.diagnostics.empty()) j["diagnostics"] = diagnostics_json(out.diagnostics);
        std::cout << j.dump(2) << "\n";
      } else if (out.stage == chain::ChainOutcome::Stage::sealed) {
        std::cout << "chain    " << out.run_id << "\nverdict  " << out.verdict << "\nreason   " << out.reason
                  << "\n";
        for (const auto& s : out.report["steps"])
          std::cout << "step     " << s["step_id"].get<std::string>() << " (" << s["role"].get<std::string>()
                    << "): " << s["verdict"].get<std::string>() << "\n";
        std::cout << "loop     " << (out.report["lifecycle"]["closed"].get<bool>() ? "closed" : "not closed")
                  << "\n";
        if (out.report.contains("result"))
          std::cout << "result   " << out.report["result"]["branch"].get<std::string>() << " at "
                    << out.report["result"]["commit"].get<std::string>().substr(0, 12) << "\n";
        std::cout << "bundle   " << out.bundle_dir.string() << "\nexit     " << code << "\n";
      }
      return code;
    };
  });
}

}  // namespace cp::cli
