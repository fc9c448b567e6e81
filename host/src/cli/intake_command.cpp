// `cp-host intake preview CONTRACT`: what a run of this contract would start from, without running it —
// the advisory execution_plan_report (compiled contract hash, pack, gates, predicted outputs, runtime
// capability summary from the runner's probes) with its role_contract_summary. Fails closed like a run would.
#include "cli/commands.hpp"
#include "cli/diagnostic_output.hpp"
#include "contract/validation.hpp"
#include "control/intake_preview.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

// The browser section of a preview: tasks, the URL policy the run gets, profile, budgets.
void print_browser(const json& b) {
  const json& pol = b["policy"];
  std::cout << "browser   " << b["tasks"].size() << " task(s), profile " << b["profile"].value("mode", "")
            << (b["profile"].contains("name") ? " " + b["profile"]["name"].get<std::string>() : std::string())
            << (b.value("headless", true) ? ", headless" : ", headed") << "\n";
  for (const auto& t : b["tasks"]) {
    std::cout << "  task    " << t["id"].get<std::string>() << "  "
              << (t["url"].is_string() ? t["url"].get<std::string>() : std::string("(no url)")) << "  "
              << t["steps"].get<size_t>() << " step(s)";
    if (t["template"].is_string()) std::cout << "  template " << t["template"].get<std::string>();
    std::cout << "\n";
  }
  std::cout << "  origins " << pol["allowed_origins"].dump() << " (" << pol["source"].get<std::string>()
            << "; network " << pol["network"].get<std::string>() << ")\n";
  if (!pol["allowed_url_patterns"].empty())
    std::cout << "  urls    " << pol["allowed_url_patterns"].dump() << "\n";
  if (pol.contains("dropped_without_network"))
    std::cout << "  dropped " << pol["dropped_without_network"].dump()
              << " (not loopback, the run has no network)\n";
  std::cout << "  downloads " << b["downloads"].get<std::string>() << ", file URLs "
            << b["file_urls"].get<std::string>() << "\n"
            << "  budgets " << b["budgets"].dump() << "\n";
}

}  // namespace

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
      auto r = control::intake_preview(o->contract, g.root, g.plugins_dir);
      if (!r.ok) {
        print_diagnostics(r.diagnostics);
        std::cerr << "cp-host intake preview: " << r.error << "\n";
        return kUsage;
      }
      const json& out = r.report;
      bool would_run = out["would_run"].get<bool>();
      if (o->json) {
        std::cout << out.dump(2) << "\n";
      } else {
        json gates = json::array();
        for (const auto& gt : out["gates"]) gates.push_back(gt["plugin"]);
        const json& rb = out["role_contract_summary"]["role_binding_summary"];
        std::cout << "task      " << out["task_id"].get<std::string>()
                  << "   (advisory preview: nothing runs)\n"
                  << "runner    " << out["runner"].get<std::string>() << "   pack "
                  << out["pack"]["pack_id"].get<std::string>()
                  << (out["pack"]["requires_approval"].get<bool>() ? " (requires approval)" : "") << "\n"
                  << "roles     owner " << rb["owner"].value("role", "") << ", assigned "
                  << rb["assigned"].value("role", "")
                  << (rb["assigned"].value("runner_allowed", true) ? ""
                                                                   : " (runner not allowed for this role)")
                  << "\n";
        if (rb["assigned"].contains("prompt_ref"))
          std::cout << "prompt    " << rb["assigned"].value("prompt_ref", "") << " (sha256 "
                    << rb["assigned"].value("prompt_sha256", "").substr(0, 12) << ")\n";
        std::cout << "gates     " << gates.dump() << "\n"
                  << "outputs   " << out["predicted_outputs"]["bundle"].size() << " bundle files, then "
                  << out["predicted_outputs"]["terminal_status"].get<std::string>() << "\n"
                  << "contract  sha256 " << out["contract_sha256"].get<std::string>() << "\n";
        if (out.contains("browser")) print_browser(out["browser"]);
        for (const auto& [k, v] : out["runtime_capability_summary"].items())
          std::cout << "capability " << k << ": " << v.dump() << "\n";
        std::cout << (would_run ? "would run\n" : "would be refused: " + out.value("refusal", "") + "\n");
      }
      return would_run ? kOk : kInvalid;
    };
  });
}

}  // namespace cp::cli
