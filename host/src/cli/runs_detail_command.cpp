// `cp-host runs contract|reports|artifacts|diff|rollback RUN`: one run's compiled contract, reports and
// packs, artifacts and patch (the same views GET /api/runs/{id}/contract|reports|artifacts|diff serve), and
// its rollback (POST /api/runs/{id}/rollback). The OS user reads the bundle as written: nothing is
// redacted here, the files are theirs to read anyway.
#include "cli/commands.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_commands.hpp"
#include "control/actor.hpp"
#include "control/patch_view.hpp"
#include "control/run_rollback.hpp"
#include "control/run_views.hpp"
#include "core/runtime_paths.hpp"
#include "log/log_lanes.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DetailOpts {
  std::string run_id, reason;
  bool json = false, patch = false;
};

std::optional<fs::path> locate_run(const Globals& g, const std::string& id) {
  auto dir = store::valid_run_id(id) ? store::find_run(g.root, id) : std::nullopt;
  if (!dir)
    std::cerr << "cp-host: no run '" << id << "' under " << core::runs_dir(g.root).string()
              << " (see `cp-host runs list`)\n";
  return dir;
}

// Prints the view (or why there is none); `human` prints it for people.
template <class Human>
int show(const Globals& g, const DetailOpts& o, control::ViewResult (*make)(const fs::path&), Human human) {
  auto dir = locate_run(g, o.run_id);
  if (!dir) return kInvalid;
  control::ViewResult v = make(*dir);
  if (v.status != control::ViewResult::Status::ok) {
    std::cerr << "cp-host: run " << o.run_id << ": " << v.message << "\n";
    return kInvalid;
  }
  if (o.json)
    std::cout << v.view.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  else
    human(v.view);
  return kOk;
}

int diff(const Globals& g, const DetailOpts& o) {
  auto dir = locate_run(g, o.run_id);
  if (!dir) return kInvalid;
  std::string text;
  control::ViewResult v = control::read_patch(*dir, text);
  if (v.status != control::ViewResult::Status::ok) {
    std::cerr << "cp-host: run " << o.run_id << ": " << v.message << "\n";
    return kInvalid;
  }
  if (o.patch) {
    print_patch(text);
    return kOk;
  }
  json view = control::parse_patch(text);
  view["run_id"] = o.run_id;
  if (o.json) {
    std::cout << view.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return kOk;
  }
  print_diff_view(view);
  return kOk;
}

int rollback(const Globals& g, const DetailOpts& o) {
  try {
    log::open_lanes(fs::absolute(g.root));  // the governance lane records the rollback
  } catch (const std::exception& e) {
    std::cerr << "cp-host: cannot open the log lanes: " << e.what() << "\n";
  }
  using O = control::RollbackResult::Outcome;
  control::RollbackResult r = control::rollback_run(g.root, o.run_id, control::os_user("human", o.reason));
  int code = r.outcome == O::rolled_back ? kOk
             : r.outcome == O::from_run  ? kFromRun
             : r.outcome == O::error     ? kInternal
             : r.outcome == O::invalid   ? kUsage
                                         : kInvalid;
  if (o.json) {
    json j{{"outcome", control::outcome_name(r.outcome)}, {"message", r.message}, {"exit_code", code}};
    if (!r.code.empty()) j["code"] = r.code;
    if (!r.rollback.is_null()) j["rollback"] = r.rollback;
    std::cout << j.dump(2) << "\n";
  } else {
    (code == kOk ? std::cout : std::cerr)
        << (code == kOk ? "" : "cp-host runs rollback: ") << r.message << "\n";
  }
  return code;
}

}  // namespace

void add_runs_detail(CLI::App& runs, Globals& g, Runner& run) {
  auto o = std::make_shared<DetailOpts>();
  auto* ct = runs.add_subcommand("contract",
                                 "Show the compiled contract a run ran (its bundle's contract.json: the "
                                 "contract with its pack's defaults, "
                                 "gates and policies) and whether it still hashes to the contract_sha256 its "
                                 "manifest recorded. Exit 0, 1 "
                                 "unreadable or no such run");
  ct->add_option("run_id", o->run_id, "Run id")->required();
  ct->add_flag("--json", o->json, "Print the whole compiled contract with its sha256 check");
  ct->callback([&g, &run, o] {
    run = [&g, o] {
      return g.server.empty() ? show(g, *o, control::contract_view, print_contract_view)
                              : remote_view(g, remote_run_path(o->run_id) + "/contract",
                                            "the contract of run " + o->run_id, o->json, print_contract_view);
    };
  });

  auto* rp = runs.add_subcommand(
      "reports",
      "List a run's reports (reports/*.json: gate reports, task_result, probes, compare, ...) and its "
      "derived "
      "packs (proof_pack, incident_pack, approval_pack) with their verdicts; a report that is not a regular "
      "file, over 16 MiB or not JSON is listed as skipped. Exit 0, 1 no such run");
  rp->add_option("run_id", o->run_id, "Run id")->required();
  rp->add_flag("--json", o->json, "Print every report and pack parsed");
  rp->callback([&g, &run, o] {
    run = [&g, o] {
      return g.server.empty() ? show(g, *o, control::reports_view, print_reports_view)
                              : remote_view(g, remote_run_path(o->run_id) + "/reports",
                                            "the reports of run " + o->run_id, o->json, print_reports_view);
    };
  });

  auto* ar = runs.add_subcommand(
      "artifacts",
      "List a run's artifacts/ (path, size, type, media type). Symlinks are listed as symlinks and never "
      "followed, nor folders reached through one; at most 10,000 entries, 32 levels deep. Exit 0, 1 no such "
      "run");
  ar->add_option("run_id", o->run_id, "Run id")->required();
  ar->add_flag("--json", o->json, "Machine-readable output");
  ar->callback([&g, &run, o] {
    run = [&g, o] {
      return g.server.empty()
                 ? show(g, *o, control::artifact_listing, print_artifacts_view)
                 : remote_view(g, remote_run_path(o->run_id) + "/artifacts",
                               "the artifacts of run " + o->run_id, o->json, print_artifacts_view);
    };
  });

  auto* df = runs.add_subcommand(
      "diff",
      "Show what a run changed, from the patch its bundle recorded (artifacts/diff.patch): one line per file "
      "with its status (A added, M modified, D deleted, R renamed, C copied) and +/- line counts, then the "
      "totals. Exit 0, 1 no such run or no patch recorded (the run changed nothing or never collected)");
  df->add_option("run_id", o->run_id, "Run id")->required();
  auto* dj = df->add_flag("--json", o->json, "Files with status, hunks and counts as JSON (as GET .../diff)");
  auto* dp = df->add_flag("--patch", o->patch, "Print the patch itself (as GET .../diff?format=patch)");
  dj->excludes(dp);
  df->callback([&g, &run, o] {
    run = [&g, o] {
      if (g.server.empty()) return diff(g, *o);
      const std::string target = remote_run_path(o->run_id) + "/diff";
      const std::string what = "the diff of run " + o->run_id;
      return o->patch ? remote_text(g, target + "?format=patch", what)
                      : remote_view(g, target, what, o->json, print_diff_view);
    };
  });

  auto* rb = runs.add_subcommand(
      "rollback",
      "Undo what a sealed run left behind. A promoted run (cp-host evidence promote): a commit reverting the "
      "promotion is added on its branch, built without any working tree and moved in with a compare-and-swap "
      "(refused while the branch is checked out anywhere, or when later commits changed the same lines). A "
      "run "
      "whose worktree was kept and never promoted: the worktree is removed. Recorded in the bundle "
      "(RUN_ROLLED_BACK, the manifest's rollback section) and the governance log; a rolled-back run is not "
      "promoted later. Exit 0 rolled back, 1 refused (the message says why; nothing changed) or no such run, "
      "2 no "
      "--reason, 3 internal error, 11 asked from inside a run");
  rb->add_option("run_id", o->run_id, "Run id")->required();
  rb->add_option("--reason", o->reason, "Why (recorded, and in the revert commit's message)")->required();
  rb->add_flag("--json", o->json, "Machine-readable output");
  rb->callback([&g, &run, o] { run = [&g, o] { return rollback(g, *o); }; });
}

}  // namespace cp::cli
