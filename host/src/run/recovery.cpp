#include "run/recovery.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "core/sha256.hpp"
#include "log/logger.hpp"
#include "os/leftover_processes.hpp"
#include "os/run_cgroup.hpp"
#include "run/evidence_packs.hpp"
#include "run/workspace.hpp"
#include "store/after_seal.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_seal.hpp"
#include "store/bundle_verify.hpp"
#include "store/event_log.hpp"
#include "store/host_key.hpp"
#include "store/seal_ledger.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <system_error>
#include <thread>

namespace cp::run {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The events of a log up to `valid_bytes`, parsed; lines that do not parse are left out.
std::vector<json> read_events(const fs::path& events_file, uint64_t valid_bytes) {
  std::ifstream in(events_file, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  content.resize(std::min<size_t>(content.size(), valid_bytes));
  std::vector<json> out;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) break;
    json e = json::parse(content.substr(pos, nl - pos), nullptr, false);
    if (e.is_object()) out.push_back(std::move(e));
    pos = nl + 1;
  }
  return out;
}

// True when the last change to `p` is more than a minute old. Another process may be creating a bundle
// right now (marker written, folder made, lock not yet taken): only leftovers older than that are a
// crash's.
bool stale(const fs::path& p) {
  std::error_code e;
  auto t = fs::last_write_time(p, e);
  return !e && fs::file_time_type::clock::now() - t > std::chrono::minutes(1);
}

// `p` relative to the runtime folder, for reports.
std::string shown(const fs::path& root, const fs::path& p) {
  fs::path base = fs::absolute(core::runtime_dir(root)).lexically_normal();
  fs::path rel = fs::absolute(p).lexically_normal().lexically_relative(base);
  return rel.empty() ? p.string() : rel.string();
}

// A manifest rebuilt from the run's own events when manifest.json cannot be read (a damaged disk): what
// RUN_STARTED and WORKSPACE_CREATED recorded, and the reports on disk. Throws when the log cannot say.
json rebuild_manifest(const fs::path& dir, const std::string& run_id) {
  fs::path events_file = dir / "events.jsonl";
  std::error_code ec;
  const std::string lead = "manifest.json is missing or not JSON, and ";
  if (!fs::is_regular_file(fs::symlink_status(events_file, ec)))
    throw std::runtime_error(lead + "events.jsonl is not a file to rebuild it from");
  store::ChainCheck check = store::verify_event_log(events_file);
  if (!check.ok && !check.torn_tail)
    throw std::runtime_error(lead + "events.jsonl does not verify (line " + std::to_string(check.bad_line) +
                             ": " + check.reason + ")");
  json started, workspace, first;
  for (const auto& e : read_events(events_file, check.valid_bytes)) {
    if (first.is_null()) first = e;
    if (e.value("type", "") == "RUN_STARTED" && started.is_null())
      started = e.value("payload", json::object());
    if (e.value("type", "") == "WORKSPACE_CREATED" && workspace.is_null())
      workspace = e.value("payload", json::object());
  }
  if (!started.is_object())
    throw std::runtime_error(lead + "events.jsonl holds no RUN_STARTED to rebuild it from");
  json m{{"schema_version", 1},
         {"run_id", run_id},
         {"task_id", started.value("task_id", "")},
         {"contract_sha256", started.value("contract_sha256", "")},
         {"runner", started.value("runner", "")},
         {"pack", started.value("pack", "")},
         {"repo", started.value("repo", "")},
         {"status", workspace.is_object() ? "running" : "created"},
         {"created_at", first.value("ts", "")},
         {"plugins", json::array()}};
  if (workspace.is_object()) {
    m["baseline_commit"] = workspace.value("baseline_commit", "");
    m["worktree"] = workspace.value("path", "");
  }
  json reports = json::object();
  for (const auto& e : fs::directory_iterator(dir / "reports", ec))
    if (e.path().extension() == ".json")
      reports[e.path().stem().string()] = "reports/" + e.path().filename().string();
  m["reports"] = reports;
  return m;
}

// The cgroups a crashed run's processes may be held in: the one its manifest records, and the one a host
// in this process's cgroup would have made (the manifest may have been cut before it said). Only a
// `cp-runs/<run id>` folder under the cgroup2 mount is accepted: a damaged manifest must never point the
// kill at another cgroup.
std::vector<fs::path> run_cgroups(const json& manifest, const std::string& run_id) {
  std::vector<fs::path> out;
  fs::path mount = os::cgroup2_mount();
  if (mount.empty()) return out;
  auto accept = [&](fs::path p) {
    p = p.lexically_normal();
    fs::path rel = p.lexically_relative(mount);
    if (rel.empty() || rel.begin()->string() == ".." || p.filename() != run_id ||
        p.parent_path().filename() != "cp-runs")
      return;
    for (const auto& have : out)
      if (have == p) return;
    out.push_back(p);
  };
  json sandbox = manifest.value("sandbox", json::object());
  if (sandbox.is_object() && sandbox.contains("cgroup") && sandbox["cgroup"].is_string())
    accept(sandbox["cgroup"].get<std::string>());
  std::string own = os::cgroup_of();
  if (auto nested = own.rfind("/cp-runs/"); nested != std::string::npos) own = own.substr(0, nested);
  if (!own.empty()) accept(mount / fs::path(own).relative_path() / "cp-runs" / run_id);
  return out;
}

struct Stopped {
  size_t killed = 0;
  std::vector<int> survivors;
};

// Kills every process of the run: its cgroup first (it holds even processes that cleared their
// environment and left their session), then whatever carries its CP_RUN_ID marker; waits up to two
// seconds for them to be gone. What is still alive then is a survivor.
Stopped stop_processes(const json& manifest, const std::string& run_id) {
  Stopped s;
  std::set<int> left;
  for (const auto& dir : run_cgroups(manifest, run_id)) {
    auto cg = os::RunCgroup::attach(dir);
    if (!cg) continue;
    s.killed += cg->kill_all().size();
    if (!cg->destroy())
      for (int pid : cg->pids()) left.insert(pid);
  }
  s.killed += static_cast<size_t>(os::kill_run_processes(run_id));
  std::vector<int> marked = os::run_processes(run_id);
  for (int i = 0; i < 40 && !marked.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    os::kill_run_processes(run_id);  // anything forked since the last round
    marked = os::run_processes(run_id);
  }
  left.insert(marked.begin(), marked.end());
  s.survivors.assign(left.begin(), left.end());
  return s;
}

// runtime/tmp/<run id>, the run's private TMPDIR: nothing reads it once the run is over, and on a full disk
// it may be what filled it. Returns true when something was removed.
bool remove_run_tmp(const fs::path& root, const std::string& run_id, RecoveryReport& report) {
  fs::path tmp = core::run_tmp_dir(root, run_id);
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(tmp, ec))) return false;
  fs::remove_all(tmp, ec);  // never follows a symlink: a link is removed as itself
  if (ec) return false;
  report.cleaned.push_back(shown(root, tmp));
  return true;
}

// Where a crashed run's worktree is: the manifest says, or (when the crash came before it could) the
// place every run's worktree is made.
// The run's worktree: only ever <runtime>/worktrees/<run id>. The manifest's `worktree` field is whatever
// the bundle says, and a planted bundle could name any folder for recovery to remove.
// A manifest that names a worktree (gone or not) had one: then it is this one.
fs::path worktree_of(const fs::path& root, const json& manifest, const std::string& run_id) {
  fs::path conventional = core::worktrees_dir(root) / run_id;
  std::error_code ec;
  bool named = manifest.contains("worktree") && manifest["worktree"].is_string();
  return named || fs::exists(fs::symlink_status(conventional, ec)) ? conventional : fs::path();
}

// Drops the repository's registration of the dead run's worktree once the folder is gone, a locked one
// included: `git worktree add` killed midway leaves its registration locked ("initializing"), and prune
// never drops a locked registration. Only registrations of this run's folder under the runtime root's
// worktrees/ are unlocked; the repository is the one the manifest records (a repository with a `.git`
// folder).
void release_worktree_registration(const fs::path& root, const fs::path& repo, const std::string& run_id,
                                   RecoveryReport& report) {
  std::error_code ec;
  if (repo.empty() || !fs::is_directory(repo / ".git", ec)) return;
  fs::path git_dir = repo / ".git";
  fs::path ours = fs::weakly_canonical(fs::absolute(core::worktrees_dir(root)), ec);
  if (ec) return;
  for (const auto& e : fs::directory_iterator(git_dir / "worktrees", ec)) {
    std::ifstream in(e.path() / "gitdir");
    std::string gitdir;
    std::getline(in, gitdir);
    if (gitdir.empty()) continue;
    fs::path wt = fs::path(gitdir).parent_path();  // <worktree>/.git -> <worktree>
    std::error_code e2;
    if (wt.filename() != run_id || fs::weakly_canonical(wt.parent_path(), e2) != ours || e2) continue;
    if (fs::exists(wt, e2)) continue;  // still there: not a leftover
    if (fs::remove(e.path() / "locked", e2))
      report.cleaned.push_back("unlocked the worktree registration " + e.path().string());
  }
  Workspace::prune(git_dir);
}

// One attempt at sealing a crashed run; throws when a write fails (a full disk, a log that cannot be
// opened), leaving whatever it did write for the next attempt to build on. A seal the dead host had
// already signed was finished by store::complete_seal before this is called; any seal-like event left at
// the end of the log without that signature is not the host's and is sealed over, never trusted.
Recovered seal(const fs::path& root, const fs::path& dir, json manifest, const Stopped& stopped,
               bool rebuilt) {
  Recovered r;
  r.run_id = dir.filename().string();
  r.killed_processes = stopped.killed;
  fs::path events_file = dir / "events.jsonl";
  const std::string rebuilt_note =
      rebuilt ? "; manifest.json was unreadable and was rebuilt from events.jsonl" : "";
  std::string reason = "host_interrupted";

  // Keep what the run changed, when its worktree is still there.
  fs::path wt = worktree_of(root, manifest, r.run_id);
  std::string commit = manifest.value("baseline_commit", "");
  json changes = json::array();
  std::error_code ec;
  if (!wt.empty() && !commit.empty() && fs::is_directory(wt, ec) &&
      !fs::exists(dir / "artifacts/diff.patch")) {
    try {
      auto ws = Workspace::attach(manifest.value("repo", ""), wt, commit);
      auto col = ws.collect();
      if (col.patch_too_large) log::warn("recovery of " + r.run_id + ": " + col.denial());
      for (const auto& ch : col.changes) changes.push_back({{"status", ch.status}, {"path", ch.path}});
      store::write_atomic(dir / "artifacts/diff.patch", col.patch);
      store::write_json_atomic(dir / "artifacts/changed_files.json", changes);
    } catch (const std::exception& e) {
      log::warn("recovery of " + r.run_id + ": cannot collect the worktree's diff: " + e.what());
    }
  }
  std::unique_ptr<store::EventLog> log;
  try {
    log = std::make_unique<store::EventLog>(events_file, r.run_id);  // truncates a torn tail
    r.truncated_bytes = log->truncated_bytes();
  } catch (const std::system_error&) {
    throw;  // the log could not be opened (a full disk): the seal failed, nothing is claimed
  } catch (const std::exception& e) {
    // The log does not verify: it is never appended to, and the seal says so.
    reason = "host_interrupted; events.jsonl does not verify (" + std::string(e.what()) + ")";
  }
  SealFacts f{r.run_id,
              manifest.value("task_id", ""),
              "error",
              reason,
              manifest.value("contract_sha256", ""),
              commit,
              json{{"status", "unknown"},
                   {"reason", "cp-host stopped while the run was " + manifest.value("status", "")}},
              changes,
              manifest.value("gates", json::array()),
              ""};
  if (!fs::exists(dir / "reports/incident_pack.json")) {
    json pack = make_incident_pack(f, dir);
    pack["suggested_next_action"] =
        "cp-host stopped mid-run (crash, kill or power loss). The events up to the cut are kept and "
        "verified; "
        "run the contract again.";
    store::write_json_atomic(dir / "reports/incident_pack.json", pack);
  }
  reason += rebuilt_note;
  json patch{{"status", "sealed"}, {"verdict", "error"}, {"reason", reason}};
  json reports = manifest.value("reports", json::object());
  reports["incident_pack"] = "reports/incident_pack.json";
  patch["reports"] = reports;
  if (!wt.empty()) {  // removed now, or already gone (freed to make room, lost with the crash)
    if (fs::exists(wt, ec)) Workspace::remove(manifest.value("repo", ""), wt);
    patch["worktree_kept"] = false;
  }
  patch["finished_at"] = core::now_utc_iso();
  patch["recovered_at"] = patch["finished_at"];
  const std::string interrupted = manifest.value("status", "");
  manifest.merge_patch(patch);
  if (log) {
    // A bundle this host's ledger never saw was planted, or made with another key folder: sealed (so it
    // stops being recovered) but marked, so that nobody takes its contents for the host's.
    if (!store::ledger_read(dir)) manifest["unvouched"] = true;
    json payload{{"status", "sealed"},
                 {"verdict", "error"},
                 {"reason", "host_interrupted"},
                 {"interrupted_status", interrupted},
                 {"truncated_bytes", r.truncated_bytes},
                 {"killed_processes", stopped.killed}};
    if (!stopped.survivors.empty()) payload["surviving_processes"] = stopped.survivors.size();
    if (manifest.contains("unvouched")) payload["unvouched"] = true;
    manifest = store::write_seal(dir, *log, "RUN_SEALED", payload, manifest, *store::HostKey::current());
  } else {
    // No seal can be made over a log that does not verify; the manifest says what happened, and
    // `runs verify` reports the broken chain.
    manifest["events"] = {{"count", 0}, {"last_hash", store::zero_hash()}};
    store::write_json_atomic(dir / "manifest.json", manifest);
  }
  store::after_seal(root, manifest, /*clear_live=*/false);  // the live marker is recover_one's
  r.verdict = "error";
  r.reason = reason;
  return r;
}

// Stops a crashed run's processes and seals its bundle; on a failed seal, frees the worktree and tries
// once more. Adds the outcome to `report`.
void recover_one(const fs::path& root, const fs::path& dir, const json& manifest, bool rebuilt,
                 RecoveryReport& report) {
  // The folder names the run: a manifest naming another run (a live one) must not make recovery kill,
  // clean or seal that one.
  const std::string run_id = dir.filename().string();
  if (manifest.contains("run_id") && manifest["run_id"] != run_id) {
    report.failed.push_back({run_id, "its manifest names run " + manifest["run_id"].dump() +
                                         ": not recovered (remove or inspect the folder)"});
    return;
  }
  // First stop what the dead host left running, so nothing changes the worktree while it is collected.
  Stopped stopped = stop_processes(manifest, run_id);
  remove_run_tmp(root, run_id, report);
  const fs::path repo = manifest.value("repo", "");
  bool sealed = false;
  try {
    report.recovered.push_back(seal(root, dir, manifest, stopped, rebuilt));
    sealed = true;
  } catch (const std::exception& first) {
    fs::path wt = worktree_of(root, manifest, run_id);
    std::error_code ec;
    if (wt.empty() || !fs::exists(wt, ec) || !Workspace::remove(repo, wt)) {
      report.failed.push_back({run_id, first.what()});
    } else {
      report.cleaned.push_back(shown(root, wt) + " (to make room for the seal)");
      try {
        Recovered r = seal(root, dir, manifest, stopped, rebuilt);
        r.worktree_freed = true;
        report.recovered.push_back(std::move(r));
        sealed = true;
      } catch (const std::exception& second) {
        report.failed.push_back(
            {run_id, std::string(first.what()) +
                         "; again after removing its worktree to make room: " + second.what()});
      }
    }
  }
  release_worktree_registration(root, repo, run_id, report);
  if (!stopped.survivors.empty()) report.survivors.push_back({run_id, stopped.survivors});
  // The marker stays while something is left to do: a seal that failed, processes that survived.
  if (sealed && stopped.survivors.empty()) store::clear_live_marker(root, run_id);
}

// True when seal.json names a later event than the manifest's counter: a seal (or an amendment's re-seal)
// was cut short by a crash after its commit point.
bool seal_pending(const fs::path& dir, const json& manifest) {
  json seal = core::read_json_file(dir / store::kSealFile);
  if (!seal.is_object() || !seal.contains("event") || !seal["event"].is_object()) return false;
  const json& ev = seal["event"];
  if (!ev.contains("seq") || !ev["seq"].is_number_unsigned()) return false;
  uint64_t counted = 0;
  if (manifest.is_object() && manifest.contains("events") && manifest["events"].is_object() &&
      manifest["events"].contains("count") && manifest["events"]["count"].is_number_unsigned())
    counted = manifest["events"]["count"].get<uint64_t>();
  return ev["seq"].get<uint64_t>() != counted;
}

// Finishes a seal the dead host had signed (store::complete_seal). True when the bundle changed.
bool finish_signed_seal(const fs::path& root, const fs::path& dir, const std::string& run_id) {
  try {
    store::EventLog log(dir / "events.jsonl", run_id);
    return store::finish_cut_seal(root, dir, log, store::KeyRing::of_dir(store::key_dir()));
  } catch (const std::system_error&) {
    throw;  // a write failed: reported as a failed recovery
  } catch (const std::exception&) {
    return false;  // a log that does not verify, or no key folder: sealed over as interrupted
  }
}

// Takes a bundle's lock without waiting. Returns the fd, -1 when a live process holds it, and -2 (with
// `why`) when the lock file cannot even be opened: a bundle nobody may be running, but that cannot be
// recovered either.
int lock_bundle(const fs::path& dir, std::string& why) {
  errno = 0;
  int fd = store::try_lock_bundle(dir);
  if (fd >= 0) return fd;
  if (errno == EWOULDBLOCK || errno == EAGAIN || errno == 0) return -1;
  why = "cannot open " + (dir / ".lock").string() + ": " + std::strerror(errno);
  return -2;
}

}  // namespace

RecoveryReport recover(const fs::path& root, bool full_scan) {
  RecoveryReport report;
  fs::path runs = core::runs_dir(root);
  std::error_code ec;
  if (!fs::is_directory(runs, ec)) return report;
  // Half-made bundles: created but never renamed into runs/, so nothing ran. Removed, with their marker.
  fs::path incoming = core::incoming_dir(root);
  for (const auto& e : fs::directory_iterator(incoming, ec)) {
    if (!stale(e.path())) continue;
    int fd = store::try_lock_bundle(e.path());
    if (fd < 0) continue;
    std::error_code e2;
    fs::remove_all(e.path(), e2);
    ::close(fd);
    if (!e2) {
      report.cleaned.push_back(shown(root, e.path()));
      std::string id = e.path().filename().string();
      if (!fs::exists(runs / id, e2) && fs::remove(core::live_marker(root, id), e2))
        report.cleaned.push_back(shown(root, core::live_marker(root, id)));
    }
  }
  // Only bundles still marked live can need recovery; a full scan reads every bundle as well.
  std::set<std::string> candidates;
  ec.clear();
  for (const auto& e : fs::directory_iterator(core::live_dir(root), ec)) {
    std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.')
      candidates.insert(name);  // not another process's marker being written
  }
  if (full_scan) {
    ec.clear();
    for (const auto& e : fs::directory_iterator(runs, ec)) {
      std::string name = e.path().filename().string();
      std::error_code e2;
      if (e.is_directory(e2) && !name.empty() && name[0] != '.') candidates.insert(name);
    }
  }
  for (const auto& run_id : candidates) {
    fs::path dir = runs / run_id;
    fs::path marker = core::live_marker(root, run_id);
    // A copy of another node's run, kept from the shared store: never this node's to seal.
    if (fs::exists(core::replica_marker(root, run_id), ec)) continue;
    if (!fs::is_directory(dir, ec)) {
      // Crashed before its bundle was renamed into place (a live host renames it within milliseconds).
      if (!fs::exists(core::incoming_dir(root) / run_id, ec) && stale(marker) && fs::remove(marker, ec))
        report.cleaned.push_back(shown(root, marker));
      continue;
    }
    json manifest = core::read_json_file(dir / "manifest.json");
    const bool marked = fs::exists(marker, ec);
    std::string status = manifest.is_object() ? manifest.value("status", "") : "";
    if ((status == "sealed" || status == "awaiting_approval") && !marked &&
        !(full_scan && seal_pending(dir, manifest)))
      continue;
    if (!manifest.is_object() && !fs::exists(dir / "manifest.json", ec) &&
        !fs::exists(dir / "events.jsonl", ec))
      continue;  // not a run bundle
    std::string why;
    int fd = lock_bundle(dir, why);
    if (fd == -1) continue;  // a live run in another process
    if (fd == -2) {
      report.failed.push_back({run_id, why});
      continue;
    }
    // Read again under the lock: another recovery may have sealed it since.
    manifest = core::read_json_file(dir / "manifest.json");
    try {
      if (seal_pending(dir, manifest) && finish_signed_seal(root, dir, run_id)) {
        report.cleaned.push_back("finished the signed seal of " + run_id + " that a crash cut short");
        manifest = core::read_json_file(dir / "manifest.json");
      }
    } catch (const std::exception& ex) {
      report.failed.push_back({run_id, ex.what()});
      ::close(fd);
      continue;
    }
    status = manifest.is_object() ? manifest.value("status", "") : "";
    const bool ended_now = status == "sealed" || status == "awaiting_approval";
    try {
      if (ended_now && !fs::exists(marker, ec)) {
        // Nothing left to do.
      } else if (ended_now) {
        // Sealed just before a crash removed the marker (what follows a seal is done again: it is
        // idempotent), or processes outlived an earlier recovery: the marker goes once nothing of the run
        // is left running.
        // Only for the bundle this folder is, as sealed: a manifest planted beside a live marker
        // names no other run, and feeds no workflow case.
        bool sound = false;
        try {
          sound = manifest.value("run_id", "") == run_id &&
                  store::verify_bundle(dir, store::KeyRing::of_dir(store::key_dir())).ok();
        } catch (const std::exception&) {
          // no key folder to verify with: nothing follows
        }
        if (sound) store::after_seal(root, manifest, /*clear_live=*/false);
        Stopped stopped = stop_processes(manifest, run_id);
        if (!stopped.survivors.empty())
          report.survivors.push_back({run_id, stopped.survivors});
        else if (fs::remove(marker, ec))
          report.cleaned.push_back(shown(root, marker));
      } else {
        bool rebuilt = !manifest.is_object();
        if (rebuilt) manifest = rebuild_manifest(dir, run_id);
        recover_one(root, dir, manifest, rebuilt, report);
      }
    } catch (const std::exception& ex) {
      report.failed.push_back({run_id, ex.what()});
    }
    ::close(fd);
  }
  // Private TMPDIRs of runs that are over: the engine removes its own at the seal, a crash leaves it.
  fs::path tmp = core::run_tmp_root(root);
  ec.clear();
  for (const auto& e : fs::directory_iterator(tmp, ec)) {
    std::string run_id = e.path().filename().string();
    fs::path dir = runs / run_id;
    std::error_code e2;
    if (fs::is_directory(dir, e2)) {
      int fd = store::try_lock_bundle(dir);
      if (fd < 0) continue;  // live
      remove_run_tmp(root, run_id, report);
      ::close(fd);
    } else if (!fs::exists(core::incoming_dir(root) / run_id, e2) && stale(e.path())) {
      remove_run_tmp(root, run_id, report);  // its bundle is gone (retention) or never was
    }
  }
  return report;
}

std::vector<Recovered> recover_unsealed(const fs::path& root, bool full_scan) {
  RecoveryReport r = recover(root, full_scan);
  for (const auto& f : r.failed) log::error("cannot recover run " + f.run_id + ": " + f.error);
  for (const auto& s : r.survivors) {
    std::string pids;
    for (int pid : s.pids) pids += (pids.empty() ? "" : " ") + std::to_string(pid);
    log::error("run " + s.run_id + ": processes survived the kill: " + pids);
  }
  return r.recovered;
}

}  // namespace cp::run
