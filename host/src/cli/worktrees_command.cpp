// `cp-host worktrees list [--json]`: the worktrees kept under the runtime root, with their run, age and size
// (what GET /api/worktrees answers).
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/remote_commands.hpp"
#include "control/kept_worktrees.hpp"
#include "core/clock.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <sstream>

namespace cp::cli {

namespace {

std::string human_bytes(unsigned long long b) {
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

std::string human_age(long long sec) {
  if (sec < 120) return std::to_string(sec) + "s";
  if (sec < 7200) return std::to_string(sec / 60) + "m";
  if (sec < 172800) return std::to_string(sec / 3600) + "h";
  return std::to_string(sec / 86400) + "d";
}

// Printed from the listing as GET /api/worktrees answers it, local or a server's.
void print_worktrees(const nlohmann::json& listing) {
  const nlohmann::json& all = array_of(listing, "worktrees");
  if (all.empty()) {
    std::cout << "no kept worktrees\n";
    return;
  }
  std::cout << std::left << std::setw(40) << "RUN" << std::setw(8) << "AGE" << std::setw(14) << "SIZE"
            << "RUN STATUS\n";
  for (const auto& w : all) {
    std::string size =
        (flag_of(w, "size_complete", false) ? "" : ">=") + human_bytes(count_of(w, "size_bytes"));
    const nlohmann::json& r = object_of(w, "run");
    std::string state;
    if (!text_of(w, "problem").empty())
      state = text_of(w, "problem");
    else if (!flag_of(w, "run_exists", false))
      state = "no such run (the worktree outlived its bundle)";
    else
      state = text_of(r, "status") + (text_of(r, "verdict").empty() ? "" : " " + text_of(r, "verdict")) +
              (flag_of(w, "promoted", false) ? ", promoted" : "");
    std::cout << std::left << std::setw(40) << text_of(w, "run_id") << std::setw(8)
              << human_age(static_cast<long long>(count_of(w, "age_sec"))) << std::setw(14) << size << state
              << "\n";
  }
  if (flag_of(listing, "truncated", false)) std::cout << "(more worktrees than listed)\n";
}

int list(const Globals& g, bool as_json) {
  if (!g.server.empty())
    return remote_view(g, "/api/worktrees", "the kept worktrees", as_json, print_worktrees);
  auto listing = control::list_kept_worktrees(g.root);
  const int64_t now = core::now_ms();
  // The same document as GET /api/worktrees.
  nlohmann::json out{{"worktrees", nlohmann::json::array()}, {"truncated", listing.truncated}};
  unsigned long long total = 0;
  bool complete = true;
  for (const auto& w : listing.worktrees) {
    out["worktrees"].push_back(control::to_json(w, now));
    total += w.size.bytes;
    complete = complete && w.size.complete;
  }
  out["count"] = out["worktrees"].size();
  out["total_bytes"] = total;
  out["total_complete"] = complete;
  if (as_json)
    std::cout << out.dump(2) << "\n";
  else
    print_worktrees(out);
  return kOk;
}

}  // namespace

void add_worktrees(CLI::App& app, Globals& g, Runner& run) {
  auto as_json = std::make_shared<bool>(false);
  auto* wt =
      app.add_subcommand("worktrees", "The runs' worktrees kept under <root>/.runtime-cache/cortexpilot");
  wt->require_subcommand(1);
  auto* ls = wt->add_subcommand(
      "list",
      "List kept worktrees: run id, age (since the run was created), size on disk, and the run's status, "
      "verdict and whether its change was promoted. A worktree is kept when its run asked (--keep-worktree, "
      "rollback.strategy none) or awaits approval; `evidence reject` or `retention apply` removes it. A size "
      "shown as >= stopped at the walk's limit. Links inside a worktree are never followed. Exit 0");
  ls->add_flag("--json", *as_json, "Machine-readable output (what GET /api/worktrees answers)");
  ls->callback([&g, &run, as_json] { run = [&g, as_json] { return list(g, *as_json); }; });
}

}  // namespace cp::cli
