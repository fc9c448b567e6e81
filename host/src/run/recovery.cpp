#include "run/recovery.hpp"

#include "control/approvals.hpp"
#include "control/workflow_cases.hpp"
#include "log/logger.hpp"
#include "run/evidence_packs.hpp"
#include "run/leftover_processes.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/event_log.hpp"
#include "store/sha256.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <fstream>

namespace cp::run {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json last_event(const fs::path& events_file, uint64_t valid_bytes) {
  std::ifstream in(events_file, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  content.resize(std::min<size_t>(content.size(), valid_bytes));
  if (content.empty()) return nullptr;
  size_t end = content.size() - 1;  // the final '\n'
  size_t start = content.rfind('\n', end - 1);
  start = start == std::string::npos ? 0 : start + 1;
  return json::parse(content.substr(start, end - start), nullptr, false);
}

Recovered recover_one(const fs::path& root, const fs::path& dir, json manifest) {
  Recovered r;
  r.run_id = manifest.value("run_id", dir.filename().string());
  // First stop what the dead host left running, so nothing changes the worktree while it is collected.
  int killed = kill_run_processes(r.run_id);
  fs::path events_file = dir / "events.jsonl";
  store::ChainCheck check = store::verify_event_log(events_file);
  json last = check.ok || check.torn_tail ? last_event(events_file, check.valid_bytes) : json(nullptr);

  json patch;
  std::string verdict = "error", reason = "host_interrupted";
  uint64_t count = check.events;
  std::string last_hash = check.last_hash;
  if (last.is_object() &&
      (last.value("type", "") == "RUN_SEALED" || last.value("type", "") == "RUN_AWAITING_APPROVAL")) {
    // The crash came after RUN_SEALED was logged but before the manifest said so: finish that seal.
    json p = last.value("payload", json::object());
    patch = {{"status", p.value("status", "sealed")}, {"reason", p.value("reason", "")}};
    if (p.contains("verdict")) patch["verdict"] = p["verdict"];
    if (p.contains("approval")) {
      patch["approval"] = p["approval"];
      fs::create_directories(control::awaiting_marker(root, r.run_id).parent_path());
      store::write_atomic(control::awaiting_marker(root, r.run_id), "");
    }
    verdict = p.value("verdict", "");
    reason = p.value("reason", "");
    if (check.torn_tail) {
      store::EventLog log(events_file, r.run_id);  // truncates the torn tail
      r.truncated_bytes = log.truncated_bytes();
    }
  } else {
    // Keep what the run changed, when its worktree is still there.
    std::string wt = manifest.value("worktree", "");
    std::string commit = manifest.value("baseline_commit", "");
    json changes = json::array();
    if (!wt.empty() && !commit.empty() && fs::is_directory(wt) && !fs::exists(dir / "artifacts/diff.patch")) {
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
    std::string broken;
    try {
      store::EventLog log(events_file, r.run_id);
      r.truncated_bytes = log.truncated_bytes();
      log.append("RUN_SEALED", {{"status", "sealed"},
                                {"verdict", "error"},
                                {"reason", "host_interrupted"},
                                {"interrupted_status", manifest.value("status", "")},
                                {"truncated_bytes", r.truncated_bytes},
                                {"killed_processes", killed}});
      count = log.count();
      last_hash = log.last_hash();
    } catch (const std::exception& e) {
      broken = e.what();
      reason = "host_interrupted; events.jsonl does not verify (" + broken + ")";
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
    patch = {{"status", "sealed"}, {"verdict", "error"}, {"reason", reason}};
    json reports = manifest.value("reports", json::object());
    reports["incident_pack"] = "reports/incident_pack.json";
    patch["reports"] = reports;
    if (!wt.empty() && fs::exists(wt)) {
      Workspace::remove(manifest.value("repo", ""), wt);
      patch["worktree_kept"] = false;
    }
  }
  patch["finished_at"] = store::now_utc_iso();
  patch["recovered_at"] = patch["finished_at"];
  patch["events"] = {{"count", count}, {"last_hash", last_hash}};
  manifest.merge_patch(patch);
  store::write_json_atomic(dir / "manifest.json", manifest);
  control::record_in_workflow_case(root, manifest);
  r.verdict = verdict;
  r.reason = reason;
  return r;
}

}  // namespace

std::vector<Recovered> recover_unsealed(const fs::path& root, bool full_scan) {
  std::vector<Recovered> out;
  fs::path runs = store::runs_dir(root);
  std::error_code ec;
  if (!fs::is_directory(runs, ec)) return out;
  // Half-made bundles: created but never renamed into runs/, so nothing ran. Removed.
  // Another process may be creating a bundle right now (marker written, folder made, lock not yet taken):
  // only leftovers older than a minute are a crash's.
  auto stale = [](const fs::path& p) {
    std::error_code e;
    auto t = fs::last_write_time(p, e);
    return !e && fs::file_time_type::clock::now() - t > std::chrono::minutes(1);
  };
  fs::path incoming = runs / ".incoming";
  if (fs::is_directory(incoming, ec)) {
    for (const auto& e : fs::directory_iterator(incoming, ec)) {
      if (!stale(e.path())) continue;
      int fd = store::try_lock_bundle(e.path());
      if (fd < 0) continue;
      fs::remove_all(e.path(), ec);
      ::close(fd);
    }
  }
  // Only bundles still marked live can need recovery (a full scan reads every manifest instead).
  std::vector<fs::path> candidates;
  if (full_scan) {
    for (const auto& e : fs::directory_iterator(runs, ec))
      if (e.is_directory(ec) && e.path().filename().string()[0] != '.') candidates.push_back(e.path());
  } else if (fs::is_directory(runs / ".live", ec)) {
    for (const auto& e : fs::directory_iterator(runs / ".live", ec))
      if (e.path().filename().string()[0] != '.')  // not another process's marker being written
        candidates.push_back(runs / e.path().filename());
  }
  for (const auto& dir : candidates) {
    std::string run_id = dir.filename().string();
    if (!fs::is_directory(dir, ec)) {
      // Crashed before its bundle was renamed into place, or is being created now by another process.
      if (stale(store::live_marker(root, run_id))) store::clear_live_marker(root, run_id);
      continue;
    }
    json manifest = store::read_json_file(dir / "manifest.json");
    if (!manifest.is_object()) continue;
    std::string status = manifest.value("status", "");
    if (status == "sealed" || status == "awaiting_approval") {
      store::clear_live_marker(root, run_id);  // sealed just before a crash removed the marker
      continue;
    }
    int fd = store::try_lock_bundle(dir);
    if (fd < 0) continue;  // a live run in another process
    try {
      out.push_back(recover_one(root, dir, manifest));
      store::clear_live_marker(root, run_id);
    } catch (const std::exception& ex) {
      log::error("cannot recover run bundle " + dir.string() + ": " + ex.what());
    }
    ::close(fd);
  }
  return out;
}

}  // namespace cp::run
