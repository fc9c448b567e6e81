// `cp-host runs list|show|events|verify|recover`: read the run bundles under the runtime root (the
// detail views and rollback are in runs_detail_command.cpp).
#include "cli/commands.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_commands.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "core/sha256.hpp"
#include "run/recovery.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/event_log.hpp"
#include "store/host_key.hpp"
#include "store/run_index.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct RunsOpts {
  std::string run_id;
  bool json = false;
  size_t limit = 50;
  std::string type;
  bool all = false;
  std::vector<std::string> keys;
  store::RunQuery query;  // list's filters
};

std::optional<fs::path> locate(const Globals& g, const std::string& id) {
  auto dir = store::find_run(g.root, id);
  if (!dir)
    std::cerr << "cp-host: no run '" << id << "' under " << core::runs_dir(g.root).string()
              << " (see `cp-host runs list`)\n";
  return dir;
}

std::string pid_list(const std::vector<int>& pids) {
  std::string out;
  for (int pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    std::getline(in, comm);
    out += (out.empty() ? "" : ", ") + std::to_string(pid) + (comm.empty() ? "" : " (" + comm + ")");
  }
  return out;
}

// What recovery could not do, on stderr: bundles it could not seal, processes that outlived the kill.
void print_incomplete(const run::RecoveryReport& r) {
  for (const auto& f : r.failed)
    std::cerr << "cp-host: cannot recover run " << f.run_id << ": " << f.error << "\n";
  for (const auto& s : r.survivors)
    std::cerr << "cp-host: run " << s.run_id << ": processes survived the kill: " << pid_list(s.pids) << "\n";
}

void recover_quietly(const Globals& g) {
  run::RecoveryReport r = run::recover(g.root);
  for (const auto& x : r.recovered)
    std::cerr << "cp-host: recovered run " << x.run_id << " left unsealed by a crash: sealed as " << x.verdict
              << " (" << x.reason << ")\n";
  print_incomplete(r);
  if (!r.complete()) std::cerr << "cp-host: see `cp-host runs recover`\n";
}

// `runs recover`: every bundle, and a line for everything done. Exit 1 when a bundle could not be sealed
// or a run's processes survived, so that a script or an operator notices.
int recover(const Globals& g) {
  run::RecoveryReport r = run::recover(g.root, true);
  for (const auto& x : r.recovered) {
    std::cout << "recovered " << x.run_id << ": " << x.verdict << " (" << x.reason << ")";
    if (x.killed_processes > 0) std::cout << "; " << x.killed_processes << " processes killed";
    if (x.worktree_freed) std::cout << "; its worktree was removed first to make room for the seal";
    std::cout << "\n";
  }
  for (const auto& c : r.cleaned) std::cout << "cleaned " << c << "\n";
  print_incomplete(r);
  if (r.recovered.empty() && r.cleaned.empty() && r.complete()) std::cout << "nothing to recover\n";
  return r.complete() ? kOk : kInvalid;
}

int list(const Globals& g, const RunsOpts& o) {
  std::string param;
  if (auto problem = store::query_problem(o.query, param); !problem.empty()) {
    std::cerr << "cp-host: " << problem << "\n";
    return kUsage;
  }
  recover_quietly(g);
  auto runs = store::list_runs(g.root);
  std::erase_if(runs, [&](const store::RunSummary& r) { return !store::matches(r, o.query); });
  if (runs.size() > o.limit) runs.resize(o.limit);
  if (o.json) {
    json arr = json::array();
    for (const auto& r : runs) arr.push_back(store::to_json(r));
    std::cout << json{{"runs", arr}, {"count", arr.size()}}.dump(2) << "\n";
    return kOk;
  }
  json rows = json::array();
  for (const auto& r : runs) rows.push_back(store::to_json(r));
  print_runs_table(rows, "under " + core::runs_dir(g.root).string());
  return kOk;
}

int show(const Globals& g, const RunsOpts& o) {
  recover_quietly(g);
  auto dir = locate(g, o.run_id);
  if (!dir) return kInvalid;
  json m = core::read_json_file(*dir / "manifest.json");
  if (!m.is_object()) {
    std::cerr << "cp-host: " << (*dir / "manifest.json").string() << " is missing or not JSON\n";
    return kInvalid;
  }
  // What users read is checked against the seal: a changed bundle says so, and the exit is 1.
  store::KeyRing keys;
  try {
    keys = store::KeyRing::of_dir(store::key_dir());
  } catch (const store::KeyError&) {
  }
  store::BundleCheck check = store::verify_settled(*dir, keys);
  const bool tampered = check.state == store::BundleCheck::State::tampered;
  if (o.json) {
    std::cout << m.dump(2) << "\n";
    if (tampered)
      std::cerr << "cp-host: run " << o.run_id << " does not verify: " << check.problems.front()
                << " (`cp-host runs verify " << o.run_id << "`)\n";
    return tampered ? kInvalid : kOk;
  }
  print_run_detail(o.run_id, m, dir->string(), store::check_json(o.run_id, check));
  return tampered ? kInvalid : kOk;
}

int events(const Globals& g, const RunsOpts& o) {
  auto dir = locate(g, o.run_id);
  if (!dir) return kInvalid;
  std::ifstream in(*dir / "events.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (!o.type.empty()) {
      json e = core::json_depth_ok(line) ? json::parse(line, nullptr, false) : json();
      if (e.is_object() && (!e.contains("type") || e["type"] != o.type)) continue;  // else warned below
    }
    print_event(line, o.json, o.run_id);
  }
  return kOk;
}

// The keys `runs verify` trusts: the files given with --key, else the host's own (current and retired).
std::optional<store::KeyRing> trusted_keys(const RunsOpts& o) {
  try {
    if (!o.keys.empty()) {
      std::vector<fs::path> files(o.keys.begin(), o.keys.end());
      return store::KeyRing::of_files(files);
    }
    return store::KeyRing::of_dir(store::key_dir());
  } catch (const store::KeyError& e) {
    std::cerr << "cp-host runs verify: " << e.what() << "\n";
    return std::nullopt;
  }
}

void print_check(const std::string& id, const store::BundleCheck& c) {
  print_verification(store::check_json(id, c));
}

int verify(const Globals& g, const RunsOpts& o) {
  auto keys = trusted_keys(o);
  if (!keys) return kUsage;
  if (!o.all) {
    auto dir = locate(g, o.run_id);
    if (!dir) return kInvalid;
    store::BundleCheck c = store::verify_settled(*dir, *keys);
    if (o.json)
      std::cout << store::check_json(o.run_id, c).dump(2) << "\n";
    else
      print_check(o.run_id, c);
    return c.ok() ? kOk : kInvalid;
  }
  // --all: every bundle under the root, with progress on stderr; live runs are listed, not failures.
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(core::runs_dir(g.root), ec)) {
    std::string n = e.path().filename().string();
    if (!n.empty() && n[0] != '.' && e.is_directory(ec) && store::valid_run_id(n)) ids.push_back(n);
  }
  std::sort(ids.begin(), ids.end());
  size_t intact = 0, tampered = 0, live = 0, i = 0;
  json results = json::array();
  for (const auto& id : ids) {
    store::BundleCheck c = store::verify_settled(core::runs_dir(g.root) / id, *keys);
    if (c.ok())
      ++intact;
    else if (c.state == store::BundleCheck::State::live)
      ++live;
    else
      ++tampered;
    if (o.json)
      results.push_back(store::check_json(id, c));
    else if (!c.ok())
      print_check(id, c);
    if (++i % 100 == 0) std::cerr << "verified " << i << " of " << ids.size() << " bundles\n";
  }
  if (o.json)
    std::cout << json{{"runs", results}, {"intact", intact}, {"tampered", tampered}, {"live", live}}.dump(2)
              << "\n";
  else
    std::cout << ids.size() << " bundles: " << intact << " intact, " << tampered << " tampered, " << live
              << " live\n";
  return tampered == 0 ? kOk : kInvalid;
}

}  // namespace

void add_runs(CLI::App& app, Globals& g, Runner& run) {
  auto o = std::make_shared<RunsOpts>();
  auto* runs = app.add_subcommand("runs", "Read run bundles under <root>/.runtime-cache/cortexpilot/runs");
  runs->require_subcommand(1);
  auto* ls = runs->add_subcommand("list", "List runs, newest first");
  ls->add_flag("--json", o->json, "Machine-readable output");
  ls->add_option("--limit", o->limit, "At most this many runs (default 50)");
  ls->add_option(
      "--status", o->query.status,
      "Only runs with this status (created, running, gating, awaiting_approval, sealed) or verdict");
  ls->add_option("--verdict", o->query.verdict,
                 "Only runs with this verdict (success, failure, denied, timeout, cancelled, error), or "
                 "awaiting_approval for runs waiting for a decision");
  ls->add_option("--runner", o->query.runner, "Only runs of this runner");
  ls->add_option("--pack", o->query.pack, "Only runs of this pack");
  ls->add_option("--workflow", o->query.workflow, "Only runs of this workflow_id");
  ls->add_option("--since", o->query.since, "Only runs created at or after this ISO-8601 UTC time");
  ls->add_option("--kind", o->query.kind,
                 "Only runs (run: contracts' runs, chain steps included) or chains' own bundles (chain)");
  ls->add_option("--search", o->query.text,
                 "Only runs whose id, task id or title holds this text (case-insensitive)");
  ls->callback([&g, &run, o] {
    run = [&g, o] {
      if (!g.server.empty()) {
        std::string param;
        if (auto problem = store::query_problem(o->query, param); !problem.empty()) {
          std::cerr << "cp-host: " << problem << "\n";
          return static_cast<int>(kUsage);
        }
        return remote_runs_list(g, o->query, o->limit, o->json);
      }
      return list(g, *o);
    };
  });
  auto* sh = runs->add_subcommand("show", "Show a run's manifest: status, verdict, gates, reports");
  sh->add_option("run_id", o->run_id, "Run id")->required();
  sh->add_flag("--json", o->json, "Print manifest.json");
  sh->callback([&g, &run, o] {
    run = [&g, o] { return g.server.empty() ? show(g, *o) : remote_runs_show(g, o->run_id, o->json); };
  });
  auto* ev = runs->add_subcommand("events", "Print a run's events");
  ev->add_option("run_id", o->run_id, "Run id")->required();
  ev->add_flag("--json", o->json, "Print the raw JSON lines");
  ev->add_option("--type", o->type, "Only events of this type (e.g. GATE_FAILED)");
  ev->callback([&g, &run, o] {
    run = [&g, o] {
      return g.server.empty() ? events(g, *o) : remote_runs_events(g, o->run_id, o->type, o->json);
    };
  });
  auto* vf = runs->add_subcommand(
      "verify",
      "Check that a run bundle is what its host sealed: the hash-chained events.jsonl, the seal's signature "
      "(the host key, or --key), every file against the seal, manifest.json against the sealed manifest, "
      "contract.json against its sha256. Each problem is one TAMPERED line. Exit 0 intact, 1 tampered, still "
      "running or no such run, 2 an unusable --key");
  vf->add_option("run_id", o->run_id, "Run id (or --all)");
  vf->add_flag("--all", o->all, "Verify every bundle under the root (exit 1 when any is tampered)");
  vf->add_option("--key", o->keys,
                 "Trust only this public key (PEM, from `cp-host keys export`; repeatable), e.g. to check a "
                 "bundle someone gave you")
      ->check(CLI::ExistingFile);
  vf->add_flag("--json", o->json, "Machine-readable output");
  vf->callback([&g, &run, o, vf] {
    if (o->all == !o->run_id.empty())
      throw CLI::ValidationError("runs verify", "name one run id, or pass --all");
    run = [&g, o]() -> int {
      if (g.server.empty()) return verify(g, *o);
      if (o->all || !o->keys.empty()) {
        std::cerr << "cp-host: runs verify --all and --key work on the local files only; with --server name "
                     "one run\n";
        return kUsage;
      }
      return remote_runs_verify(g, o->run_id, o->json, print_verification);
    };
  });
  auto* rc = runs->add_subcommand(
      "recover",
      "Seal bundles left unsealed by a crash (their processes killed first) and clean what crashes leave: "
      "half-made bundles, stale live markers, runs' private TMPDIRs, dead worktree registrations. "
      "run/list/show do this for bundles marked live; this command also reads every bundle's manifest. "
      "Exit 0 done, 1 a bundle could not be sealed or a run's processes survived (each named on stderr)");
  rc->callback([&g, &run] { run = [&g] { return recover(g); }; });
  add_runs_detail(*runs, g, run);
  add_runs_follow(*runs, g, run);
}

}  // namespace cp::cli
