// `cp-host retention plan|apply`: governed cleanup by the retention lane plugins (policies/
// retention_policy.json). plan is a dry run; apply deletes exactly what a plan listed, re-checking each
// entry. Both write .runtime-cache/cortexpilot/reports/retention_report.json.
#include "cli/commands.hpp"
#include "control/actor.hpp"
#include "core/json_file.hpp"
#include "plugin/registry.hpp"
#include "retention/retention.hpp"
#include "store/bundle.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <iomanip>
#include <iostream>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string human(long long b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << " " << units[u];
  return o.str();
}

void print_report(const json& r) {
  bool applied = r["mode"] == "apply";
  for (const auto& [name, l] : r["lanes"].items()) {
    std::cout << std::left << std::setw(20) << name;
    if (!l.value("enabled", true)) {
      std::cout << "disabled\n";
      continue;
    }
    std::cout << l.value("entries", 0) << " entries, " << human(l.value("bytes", 0LL)) << "; ";
    if (applied)
      std::cout << l["deleted"].size() << " deleted, " << human(l.value("reclaimed_bytes", 0LL))
                << " reclaimed, " << l["skipped"].size() << " skipped";
    else
      std::cout << l["candidates"].size() << " to delete (" << human(l.value("candidate_bytes", 0LL)) << "), "
                << l.value("held", json::array()).size() << " held";
    std::cout << "\n";
    if (!applied)
      for (const auto& c : l["candidates"])
        std::cout << "    - " << c.value("path", "") << "  " << human(c.value("bytes", 0LL)) << "  "
                  << c.value("reason", "") << "\n";
    for (const auto& s : l.value("skipped", json::array()))
      std::cout << "    ~ " << s.value("path", "") << "  skipped: " << s.value("reason", "") << "\n";
    for (const auto& e : l["errors"])
      std::cerr << "    ! " << name << ": " << e.value("path", "") << (e.contains("path") ? ": " : "")
                << e.value("message", "") << "\n";
  }
  const json& t = r["totals"];
  std::cout << (applied ? "deleted " + std::to_string(t.value("deleted", 0)) + " entries, reclaimed " +
                              human(t.value("reclaimed_bytes", 0LL))
                        : "would delete " + std::to_string(t.value("candidates", 0)) + " entries, " +
                              human(t.value("candidate_bytes", 0LL)))
            << "; report: " << retention::report_path(fs::path(r.value("root", ""))).string() << "\n";
}

}  // namespace

void add_retention(CLI::App& app, Globals& g, Runner& run) {
  auto* cmd = app.add_subcommand(
      "retention",
      "Governed cleanup of the runtime folders, lane by lane (policies/retention_policy.json). Runs awaiting "
      "approval, live runs and protected entries are never deleted.\n"
      "Exit codes: 0 done, 1 a lane reported errors, 2 bad policy or option, 3 internal error.");
  cmd->require_subcommand(1);
  struct Opts {
    bool json = false;
    std::vector<std::string> lanes;
    std::string plan_file;
  };
  auto o = std::make_shared<Opts>();
  auto* plan = cmd->add_subcommand("plan", "Dry run: what each lane would delete, why, and how many bytes");
  plan->add_flag("--json", o->json, "Print the report as JSON");
  plan->add_option("--lane", o->lanes, "Only this lane (repeatable)");
  auto* apply = cmd->add_subcommand("apply", "Delete what the plan lists (a fresh plan, or --plan FILE)");
  apply->add_flag("--json", o->json, "Print the report as JSON");
  apply->add_option("--lane", o->lanes, "Only this lane (repeatable)");
  apply->add_option("--plan", o->plan_file,
                    "A report written by `retention plan --json`: delete exactly that");
  auto body = [&g, o](bool applying) -> int {
    plugin::Registry reg;
    if (!load_plugins(g, reg)) return kUsage;
    retention::Options ro;
    ro.root = fs::weakly_canonical(fs::absolute(g.root));
    ro.lanes = o->lanes;
    control::Actor me = control::os_user();
    ro.by = me.by;
    ro.by_kind = me.by_kind;
    bool tty = ::isatty(2);
    if (applying && tty)
      ro.progress = [](size_t done, size_t total, const std::string&) {
        int width = 30, filled = total ? static_cast<int>(width * done / total) : width;
        std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] " << done
                  << "/" << total << std::flush;
        if (done == total) std::cerr << "\n";
      };
    json report;
    try {
      if (!applying) {
        report = retention::plan(ro, reg);
      } else {
        json p;
        if (!o->plan_file.empty()) {
          p = core::read_json_file(o->plan_file);
          if (!p.is_object() || p.value("mode", "") != "plan") {
            std::cerr << "cp-host retention apply: " << o->plan_file
                      << " is not a plan report (from `cp-host retention plan --json`)\n";
            return kUsage;
          }
          if (p.value("root", "") != ro.root.string()) {
            std::cerr << "cp-host retention apply: that plan is for " << p.value("root", "") << ", not "
                      << ro.root.string() << "\n";
            return kUsage;
          }
        } else {
          p = retention::plan(ro, reg);
        }
        report = retention::apply(ro, reg, p);
      }
    } catch (const retention::PolicyError& e) {
      std::cerr << "cp-host retention: " << e.what() << "\n";
      return kUsage;
    }
    if (o->json)
      std::cout << report.dump(2) << "\n";
    else
      print_report(report);
    return report["totals"].value("errors", 0) > 0 ? kInvalid : kOk;
  };
  plan->callback([&run, body] { run = [body] { return body(false); }; });
  apply->callback([&run, body] { run = [body] { return body(true); }; });
}

}  // namespace cp::cli
