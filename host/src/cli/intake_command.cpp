// `cp-host intake preview CONTRACT`: what a run of this contract would start from, without running it —
// the compiled contract's hash, pack, gates, and the runtime capability summary from the runner's probes
// (lane, compat_api_mode, provider_status, tool_execution). Fails closed like a run would.
#include "cli/commands.hpp"
#include "plugin/registry.hpp"
#include "run/capability_check.hpp"
#include "run/engine.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

using nlohmann::json;

void add_intake(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string contract;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* intake = app.add_subcommand("intake", "Look at a contract before running it");
  intake->require_subcommand(1);
  auto* preview =
      intake->add_subcommand("preview",
                             "Validate and compile a contract and run its runner's probes, without running "
                             "it. Exit 0 it would run, 1 it "
                             "would be refused before running (the reason is printed), 2 invalid contract.");
  preview->add_option("contract", o->contract, "Task contract JSON file")->required();
  preview->add_flag("--json", o->json, "Machine-readable output");
  preview->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      run::Prepared prep;
      run::RunOutcome bad;
      if (!run::prepare_run(o->contract, g.root, g.plugins_dir, prep, bad)) {
        for (const auto& d : bad.diagnostics)
          std::cerr << d.file << ":" << d.line << ": error [" << d.rule << "] " << contract::describe(d)
                    << "\n";
        std::cerr << "cp-host intake preview: " << bad.error << "\n";
        return kUsage;
      }
      const json& doc = prep.compiled.document;
      auto caps = run::check_capabilities(*prep.registry, *prep.runner, doc["contract"]);
      json gates = json::array();
      for (const auto& gt : doc["gates"]) gates.push_back(gt["plugin"]);
      json out{{"task_id", doc["contract"]["task_id"]},
               {"runner", prep.runner->id},
               {"pack", doc["pack"]["pack_id"]},
               {"requires_approval", doc["pack"]["requires_approval"]},
               {"gates", gates},
               {"contract_sha256", prep.compiled.sha256},
               {"runtime_capability_summary", caps.summary},
               {"would_run", caps.problem.empty()}};
      if (!caps.problem.empty()) out["refusal"] = caps.problem;
      if (o->json) {
        std::cout << out.dump(2) << "\n";
      } else {
        std::cout << "task      " << out["task_id"].get<std::string>() << "\n"
                  << "runner    " << prep.runner->id << "   pack " << out["pack"].get<std::string>() << "\n"
                  << "gates     " << gates.dump() << "\n"
                  << "contract  sha256 " << prep.compiled.sha256 << "\n";
        for (const auto& [k, v] : caps.summary.items())
          std::cout << "capability " << k << ": " << v.dump() << "\n";
        std::cout << (caps.problem.empty() ? "would run\n" : "would be refused: " + caps.problem + "\n");
      }
      return caps.problem.empty() ? kOk : kInvalid;
    };
  });
}

}  // namespace cp::cli
