// `cp-host compare RUN_A RUN_B` and `cp-host workflows list|show|rebuild`: read surfaces over sealed runs.
#include "cli/commands.hpp"
#include "cli/remote_client.hpp"
#include "cli/remote_commands.hpp"
#include "control/run_compare.hpp"
#include "control/workflow_cases.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

using nlohmann::json;

void add_compare(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string a, b;
    bool json = false, no_write = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "compare",
      "Compare two runs side by side (verdicts, gate outcomes, changed files, diff stats, usage, event-type "
      "counts) and write reports/run_compare_report.json into RUN_B's bundle. Exit 0 written, 1 a run is "
      "missing, 3 internal error.");
  cmd->add_option("run_a", o->a, "The earlier run (e.g. the original)")->required();
  cmd->add_option("run_b", o->b, "The later run (e.g. its replay); the report goes into its bundle")
      ->required();
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  cmd->add_flag("--no-write", o->no_write, "Only print the report");
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      auto r = control::compare_runs(g.root, o->a, o->b, !o->no_write);
      if (!r.ok) {
        std::cerr << "cp-host compare: " << r.message << "\n";
        return r.missing || r.unverified ? kInvalid : kInternal;
      }
      const json& j = r.report;
      if (o->json) {
        std::cout << j.dump(2) << "\n";
        return kOk;
      }
      std::cout << "verdict   " << j["verdict"]["a"].get<std::string>() << " | "
                << j["verdict"]["b"].get<std::string>()
                << (j["verdict"]["same"].get<bool>() ? "  (same)" : "  (different)") << "\n";
      for (const auto& gt : j["gates"])
        std::cout << "gate      " << gt["gate_id"].get<std::string>() << ": " << gt["a"].get<std::string>()
                  << " | " << gt["b"].get<std::string>() << "\n";
      const json& cf = j["changed_files"];
      std::cout << "files     " << cf["a"] << " | " << cf["b"] << "  (only a: " << cf["only_a"].size()
                << ", only b: " << cf["only_b"].size() << ", both: " << cf["both"].size() << ")\n";
      const json& d = j["diff_stats"];
      std::cout << "diff      +" << d["a"]["insertions"] << "/-" << d["a"]["deletions"] << " | +"
                << d["b"]["insertions"] << "/-" << d["b"]["deletions"]
                << (d["same_patch"].get<bool>() ? "  (same patch)" : "") << "\n";
      if (!o->no_write) std::cout << "report    reports/run_compare_report.json of " << o->b << "\n";
      return kOk;
    };
  });
}

void add_workflows(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string id;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* wf = app.add_subcommand("workflows", "Workflow cases: the runs that share a workflow_id");
  wf->require_subcommand(1);
  auto* list = wf->add_subcommand("list", "Every workflow case, newest latest run first");
  list->add_flag("--json", o->json, "Machine-readable output");
  list->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      json all;
      if (!g.server.empty()) {
        int code = kOk;
        auto answer = remote_get(g, "/api/workflows", "the workflow cases", !o->json, code);
        if (!answer) return code;
        if (o->json) {
          std::cout << answer->dump(2) << "\n";
          return kOk;
        }
        all = answer->contains("workflows") ? (*answer)["workflows"] : json::array();
      } else {
        all = control::list_workflow_cases(g.root);
        if (o->json) {
          std::cout << json{{"workflows", all}, {"count", all.size()}}.dump(2) << "\n";
          return kOk;
        }
      }
      if (all.empty()) std::cout << "no workflow case yet (runs link to one with workflow_id)\n";
      for (const auto& w : all)
        std::cout << w["workflow_id"].get<std::string>() << "  " << w.value("verdict", w.value("status", ""))
                  << "  runs " << w["run_count"] << "  latest " << w["latest_run_id"].get<std::string>()
                  << "\n";
      return kOk;
    };
  });
  auto* show = wf->add_subcommand("show", "One workflow case (its case.json)");
  show->add_option("id", o->id, "Workflow id")->required();
  show->add_flag("--json", o->json, "Machine-readable output (the default prints it as JSON too)");
  show->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      if (!g.server.empty())  // printed as JSON either way, as the local case is
        return remote_view(g, "/api/workflows/" + url_encode(o->id), "workflow case " + o->id, true, nullptr);
      auto c = control::read_workflow_case(g.root, o->id);
      if (!c) {
        std::cerr << "cp-host workflows show: no workflow case " << o->id << "\n";
        return kInvalid;
      }
      std::cout << c->dump(2) << "\n";
      return kOk;
    };
  });
  auto* rebuild = wf->add_subcommand("rebuild", "Rewrite a case.json from the run bundles that carry the id");
  rebuild->add_option("id", o->id, "Workflow id")->required();
  rebuild->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      json c = control::rebuild_workflow_case(g.root, o->id);
      if (c.is_null()) {
        std::cerr << "cp-host workflows rebuild: no run carries workflow_id " << o->id << "\n";
        return kInvalid;
      }
      std::cout << "rebuilt " << o->id << " from " << c["run_count"] << " run(s)\n";
      return kOk;
    };
  });
}

}  // namespace cp::cli
