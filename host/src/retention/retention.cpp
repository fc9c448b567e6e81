#include "retention/retention.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "core/json_depth.hpp"
#include "core/schema_catalog.hpp"
#include "log/log_lanes.hpp"
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_backend.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/host_events.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <set>

namespace cp::retention {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kTombstone = ".cp-tombstone-";

fs::path expand_home(const std::string& p) {
  // The machine cache follows the XDG base directories: "~/.cache" is $XDG_CACHE_HOME when that is set.
  if (p == "~/.cache" || p.rfind("~/.cache/", 0) == 0)
    if (const char* xdg = ::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/')
      return fs::path(xdg) / (p.size() > 9 ? p.substr(9) : std::string());
  if (p.rfind("~/", 0) == 0 || p == "~") {
    const char* home = ::getenv("HOME");
    return fs::path(home ? home : "/") / p.substr(p.size() > 1 ? 2 : 1);
  }
  return p;
}

fs::path default_root(const fs::path& root, const std::string& lane) {
  if (lane == "runs") return core::runs_dir(root);
  if (lane == "worktrees") return core::worktrees_dir(root);
  if (lane == "logs") return core::logs_dir(root);
  if (lane == "cache") return core::cache_dir(root);
  if (lane == "codex_home") return core::agent_homes_dir(root);
  if (lane == "intake") return core::intake_dir(root);
  if (lane == "contract_artifacts") return core::queue_contracts_dir(root);
  // The browser runner's persistent profiles (its "shared_state:browser-profiles" folder).
  if (lane == "browser_profiles") return core::shared_state_dir(root, "browser-profiles");
  return expand_home("~/.cache/cortexpilot");  // machine_cache
}

// Runs a live process holds (their bundle lock is taken): never a candidate in any lane.
std::vector<std::string> live_runs(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path live = core::live_dir(root);
  for (const auto& e : fs::directory_iterator(live, ec)) {
    std::string id = e.path().filename().string();
    if (id.empty() || id[0] == '.') continue;
    fs::path dir = core::runs_dir(root) / id;
    if (!fs::exists(dir)) continue;
    int fd = store::try_lock_bundle(dir);
    if (fd < 0)
      out.push_back(id);
    else
      ::close(fd);
  }
  return out;
}

// Contract snapshots of queue items that have not ended.
std::vector<std::string> queued_contracts(const fs::path& root) {
  std::vector<std::string> out;
  queue::BackendOptions bo;
  bo.root = root;
  bo.create = false;  // a plan creates no queue
  auto backend = queue::open_queue_backend(bo);
  if (!backend) return out;
  auto snapshot = backend->list();
  for (const auto& [id, it] : snapshot->state.items())
    if (!it.terminal()) out.push_back(fs::path(it.contract_path).filename().string());
  return out;
}

// A browser profile's lock (<lane root>/<name>.lock, flock'd by the run using the profile), taken without
// waiting: -1 when a live run holds it (or it cannot be opened), else a descriptor to close after the
// profile is out of the way, or -2 when the profile has no lock file (no run has used it, none holds it).
int lock_browser_profile(const fs::path& lane_root, const std::string& rel, std::string& why) {
  fs::path lock = lane_root / (rel + ".lock");
  int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return -2;
    why = "its lock file cannot be opened (" + std::string(std::strerror(errno)) + ")";
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    why = errno == EWOULDBLOCK ? "in use by a live run" : "its lock file cannot be locked";
    ::close(fd);
    return -1;
  }
  return fd;
}

bool safe_rel(const std::string& rel) {
  if (rel.empty() || rel[0] == '/' || rel.find('\0') != std::string::npos) return false;
  for (const auto& part : fs::path(rel))
    if (part == ".." || part == ".") return false;
  return true;
}

// Removes tombstones a crashed apply left under `dir` (and one level below, for grouped lanes).
int sweep_tombstones(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(kTombstone, 0) == 0) {
      fs::remove_all(e.path(), ec);
      ++n;
    } else if (e.is_directory(ec) && !e.is_symlink(ec) && name[0] != '.') {
      for (const auto& f : fs::directory_iterator(e.path(), ec))
        if (f.path().filename().string().rfind(kTombstone, 0) == 0) {
          fs::remove_all(f.path(), ec);
          ++n;
        }
    }
  }
  return n;
}

json log_lane_summary(const fs::path& root) {
  json out = json::object();
  std::error_code ec;
  for (const auto& lane : fs::directory_iterator(core::logs_dir(root), ec)) {
    if (!lane.is_directory(ec)) continue;
    long long files = 0, bytes = 0, gz = 0, newest = 0;
    for (const auto& f : fs::directory_iterator(lane.path(), ec)) {
      struct stat st {};
      if (::lstat(f.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      ++files;
      bytes += st.st_size;
      if (f.path().extension() == ".gz") ++gz;
      newest = std::max<long long>(newest, st.st_mtime);
    }
    out[lane.path().filename().string()] = {
        {"files", files}, {"bytes", bytes}, {"gz_files", gz}, {"newest_mtime", newest}};
  }
  return out;
}

json machine_cache_summary(const json& policy, const json& lanes_report) {
  json lane = policy["lanes"].value("machine_cache", json::object());
  fs::path mroot = expand_home(lane.value("root", std::string("~/.cache/cortexpilot")));
  json s{{"root", mroot.string()},
         {"exists", fs::is_directory(mroot)},
         {"cap_bytes", lane.value("max_bytes", 20LL << 30)},
         {"auto_clean_children", lane.value("auto_clean_children", json::array())},
         {"protected_patterns", lane.value("protected_patterns", json::array())}};
  if (lanes_report.contains("machine_cache")) {
    long long total = lanes_report["machine_cache"].value("bytes", 0LL);
    s["total_bytes"] = total;
    s["over_cap"] = total > s["cap_bytes"].get<long long>();
  }
  return s;
}

json totals_of(const json& lanes) {
  long long cand = 0, cand_bytes = 0, deleted = 0, reclaimed = 0, errors = 0;
  for (const auto& [name, l] : lanes.items()) {
    cand += static_cast<long long>(l.value("candidates", json::array()).size());
    cand_bytes += l.value("candidate_bytes", 0LL);
    deleted += static_cast<long long>(l.value("deleted", json::array()).size());
    reclaimed += l.value("reclaimed_bytes", 0LL);
    errors += static_cast<long long>(l.value("errors", json::array()).size());
  }
  return {{"candidates", cand},
          {"candidate_bytes", cand_bytes},
          {"deleted", deleted},
          {"reclaimed_bytes", reclaimed},
          {"errors", errors}};
}

// The whole report of a plan or an apply: lanes, totals, summaries; checked against its schema and written.
json finish_report(const fs::path& root, const char* mode, const json& lanes, const json& policy,
                   std::chrono::steady_clock::time_point t0) {
  json report{{"schema_version", 1},
              {"mode", mode},
              {"generated_at", core::iso_from_ms(core::now_ms())},
              {"root", root.string()},
              {"lanes", lanes},
              {"totals", totals_of(lanes)},
              {"log_lane_summary", log_lane_summary(root)},
              {"machine_cache_summary", machine_cache_summary(policy, lanes)}};
  report["duration_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  auto v = core::schema("retention_report").validate(report);
  if (!v.empty())
    throw std::logic_error("retention report breaks its schema at " + v[0].pointer + ": " + v[0].message);
  store::write_json_atomic(report_path(root), report);
  return report;
}

// Who applied what, as a host event and a governance line: an apply on someone's word is an action of no
// run. Nothing to record when nothing went and nothing failed.
void record_apply(const Options& o, const json& report) {
  const json& t = report["totals"];
  if (o.by.empty() || (t.value("deleted", 0) == 0 && t.value("errors", 0) == 0)) return;
  json per_lane = json::object();
  for (const auto& [name, l] : report["lanes"].items())
    per_lane[name] = {{"deleted", l.value("deleted", json::array()).size()},
                      {"reclaimed_bytes", l.value("reclaimed_bytes", 0LL)},
                      {"skipped", l.value("skipped", json::array()).size()},
                      {"errors", l.value("errors", json::array()).size()}};
  json payload{{"by", o.by},
               {"by_kind", o.by_kind},
               {"lanes", per_lane},
               {"deleted", t.value("deleted", 0)},
               {"reclaimed_bytes", t.value("reclaimed_bytes", 0LL)},
               {"errors", t.value("errors", 0)}};
  if (!o.reason.empty()) payload["reason"] = o.reason;
  log::Event ev;
  ev.lane = log::Lane::governance;
  ev.correlation_kind = "retention";
  ev.correlation_id = "apply";
  ev.component = "retention";
  ev.message = "retention applied by " + o.by + ": " + std::to_string(t.value("deleted", 0)) +
               " entries deleted, " + std::to_string(t.value("reclaimed_bytes", 0LL)) + " bytes reclaimed";
  ev.fields = payload;
  log::emit(ev);
  store::record_host_event(o.root, "RETENTION_APPLIED", payload);
}

}  // namespace

json load_policy(const fs::path& root) {
  fs::path file = root / "policies" / "retention_policy.json";
  json p = core::read_json_file(file);
  if (!p.is_object())
    throw PolicyError(file.string() + ": missing or not JSON; see schemas/retention_policy.schema.json");
  auto v = core::schema("retention_policy").validate(p);
  if (!v.empty())
    throw PolicyError(file.string() + ": " + (v[0].pointer.empty() ? "/" : v[0].pointer) + ": " +
                      v[0].message);
  return p;
}

fs::path lane_root(const fs::path& root, const std::string& lane, const json& cfg) {
  fs::path r = cfg.is_object() && cfg.contains("root") && cfg["root"].is_string()
                   ? expand_home(cfg["root"].get<std::string>())
                   : default_root(root, lane);
  if (r.is_relative()) r = root / r;
  return r.lexically_normal();
}

std::vector<std::string> lane_names(const fs::path& root) {
  std::vector<std::string> out;
  const json policy = load_policy(root);  // kept: a range-for over a member of a temporary would dangle
  for (const auto& [name, cfg] : policy["lanes"].items()) out.push_back(name);
  return out;
}

fs::path report_path(const fs::path& root) {
  return core::host_reports_dir(root) / "retention_report.json";
}

json plan(const Options& o, const plugin::Registry& reg) {
  auto t0 = std::chrono::steady_clock::now();
  json policy = load_policy(o.root);
  std::set<std::string> only(o.lanes.begin(), o.lanes.end());
  for (const auto& l : only)
    if (!policy["lanes"].contains(l))
      throw PolicyError("lane '" + l +
                        "' is not in policies/retention_policy.json (lanes: runs, worktrees, logs, "
                        "cache, codex_home, intake, contract_artifacts, machine_cache, browser_profiles)");
  std::vector<std::string> live = live_runs(o.root);
  std::vector<std::string> contracts = queued_contracts(o.root);
  json global_protected = policy.value("protected_patterns", json::array());
  json lanes = json::object();
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  for (const auto& [name, cfg] : policy["lanes"].items()) {
    if (!only.empty() && !only.count(name)) continue;
    std::string plugin_id = "retention_" + name;
    fs::path lane_root = retention::lane_root(o.root, name, cfg);
    json l{{"plugin", plugin_id},
           {"lane_root", lane_root.string()},
           {"enabled", cfg.value("enabled", true)},
           {"candidates", json::array()},
           {"candidate_bytes", 0},
           {"held", json::array()},
           {"errors", json::array()}};
    if (!cfg.value("enabled", true)) {
      lanes[name] = l;
      continue;
    }
    l["tombstones_swept"] = sweep_tombstones(lane_root);
    const plugin::PluginInfo* info = reg.find(plugin_id);
    if (!info || info->kind != plugin::Kind::retention_lane) {
      l["errors"].push_back({{"message", "no retention lane plugin '" + plugin_id + "' is loaded"}});
      lanes[name] = l;
      continue;
    }
    json pol = cfg;
    json prot = pol.value("protected_patterns", json::array());
    for (const auto& g : global_protected) prot.push_back(g);
    pol["protected_patterns"] = prot;
    json in_use = json::array();
    if (name == "runs" || name == "worktrees" || name == "codex_home")
      for (const auto& id : live) in_use.push_back(id);
    if (name == "contract_artifacts")
      for (const auto& c : contracts) in_use.push_back(c);
    json input{{"lane", name},
               {"lane_root", lane_root.string()},
               {"project_root", o.root.string()},
               {"now", now},
               {"policy", pol},
               {"in_use", in_use}};
    std::string err;
    auto inst = plugin::Instance::create(*info, err);
    plugin::CallOutcome out;
    if (inst) {
      plugin::CallContext ctx(info->id);
      out = inst->plan(ctx, input.dump());
    } else {
      out.error = err;
    }
    json p = out.ok() && core::json_depth_ok(out.output) ? json::parse(out.output, nullptr, false) : json();
    std::vector<core::SchemaViolation> bad;
    if (p.is_object()) bad = core::schema("retention_plan").validate(p);
    if (!out.ok() || !p.is_object() || !bad.empty()) {
      // A lane that fails plans nothing: retention fails closed, it never guesses what may go.
      std::string why = !out.ok()        ? out.error
                        : !p.is_object() ? "the plan is not JSON"
                                         : "the plan breaks schemas/retention_plan.schema.json at " +
                                               bad[0].pointer + ": " + bad[0].message;
      l["errors"].push_back({{"message", "lane plugin " + plugin_id + " failed: " + why}});
      lanes[name] = l;
      continue;
    }
    json cands = json::array();
    for (const auto& c : p["candidates"]) {
      if (!safe_rel(c["path"].get<std::string>())) {
        l["errors"].push_back(
            {{"path", c["path"]}, {"message", "refused: the lane proposed a path outside its root"}});
        continue;
      }
      cands.push_back(c);
    }
    l["candidates"] = cands;
    l["candidate_bytes"] = p["candidate_bytes"];
    l["held"] = p["held"];
    l["entries"] = p["entries"];
    l["bytes"] = p["bytes"];
    if (p.contains("over_cap_after_plan")) l["over_cap_after_plan"] = p["over_cap_after_plan"];
    for (const auto& e : p["errors"]) l["errors"].push_back(e);
    lanes[name] = l;
  }
  return finish_report(o.root, "plan", lanes, policy, t0);
}

json apply(const Options& o, const plugin::Registry&, const json& plan_report) {
  auto t0 = std::chrono::steady_clock::now();
  json policy = load_policy(o.root);
  std::set<std::string> live;
  for (const auto& id : live_runs(o.root)) live.insert(id);
  std::set<std::string> queued;
  for (const auto& c : queued_contracts(o.root)) queued.insert(c);
  json global_protected = policy.value("protected_patterns", json::array());
  size_t total = 0, done = 0;
  for (const auto& [name, l] : plan_report["lanes"].items()) {
    if (!o.only) {
      total += l.value("candidates", json::array()).size();
    } else if (auto want = o.only->find(name); want != o.only->end()) {
      total += want->second.size();
    }
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  json lanes = json::object();
  for (const auto& [name, pl] : plan_report["lanes"].items()) {
    json l = pl;
    l["deleted"] = json::array();
    l["skipped"] = json::array();
    long long reclaimed = 0;
    fs::path lane_root = pl.value("lane_root", "");
    // The plan must be about this root's lanes, as the policy places them now.
    if (lane_root.empty() || !policy["lanes"].contains(name)) {
      l["errors"].push_back({{"message", "lane not in the current policy; nothing applied"}});
      lanes[name] = l;
      continue;
    }
    if (lane_root != retention::lane_root(o.root, name, policy["lanes"][name])) {
      l["errors"].push_back(
          {{"message", "the plan places the lane at " + lane_root.string() + ", the policy at " +
                           retention::lane_root(o.root, name, policy["lanes"][name]).string() +
                           "; nothing applied (make a new plan)"}});
      lanes[name] = l;
      continue;
    }
    l["tombstones_swept"] = sweep_tombstones(lane_root);
    json chosen = pl.value("candidates", json::array());
    if (o.only) {
      // Only what was chosen, and only if the plan lists it.
      auto want = o.only->find(name);
      std::set<std::string> listed;
      json kept = json::array();
      for (const auto& c : chosen) {
        listed.insert(c.value("path", ""));
        if (want != o.only->end() && want->second.count(c.value("path", ""))) kept.push_back(c);
      }
      if (want != o.only->end())
        for (const auto& path : want->second)
          if (!listed.count(path))
            l["skipped"].push_back(
                {{"path", path}, {"reason", "not a candidate of the plan (make a new plan)"}});
      chosen = kept;
    }
    for (const auto& c : chosen) {
      std::string rel = c.value("path", "");
      if (o.progress) o.progress(++done, total, name + "/" + rel);
      auto skip = [&](const std::string& why) { l["skipped"].push_back({{"path", rel}, {"reason", why}}); };
      if (!safe_rel(rel)) {
        skip("not a path inside the lane");
        continue;
      }
      fs::path p = lane_root / rel;
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) {
        skip("already gone");
        continue;
      }
      // Re-check what makes an entry untouchable: it may have changed since the plan.
      std::string first = fs::path(rel).begin()->string();
      if ((name == "runs" || name == "worktrees" || name == "codex_home") && live.count(first)) {
        skip("its run is live now");
        continue;
      }
      if (name == "contract_artifacts" && queued.count(first)) {
        skip("a queued item uses it");
        continue;
      }
      if (name == "runs") {
        json m = core::read_json_file(p / "manifest.json");
        if (!m.is_object() || m.value("status", "") != "sealed") {
          skip("no longer sealed (status " +
               (m.is_object() ? m.value("status", "") : std::string("unreadable")) + ")");
          continue;
        }
        int fd = store::try_lock_bundle(p);
        if (fd < 0) {
          skip("its bundle is locked by a live process");
          continue;
        }
        ::close(fd);
      }
      // A browser profile stays locked by this process from the check until it is out of sight, so no run
      // can start using it in between; a run that locks it afterwards starts from an empty profile.
      int profile_lock = -2;
      if (name == "browser_profiles") {
        std::string why;
        if (rel.find('/') != std::string::npos ||
            (profile_lock = lock_browser_profile(lane_root, rel, why)) == -1) {
          skip(why.empty() ? "not a profile folder of the lane" : why);
          continue;
        }
      }
      struct ProfileUnlock {
        int fd;
        ~ProfileUnlock() {
          if (fd >= 0) ::close(fd);
        }
      } unlock_profile{profile_lock};
      // A worktree's registration in its repository goes with it.
      fs::path owner = name == "worktrees" ? run::Workspace::owner_git_dir(p) : fs::path();
      // Out of sight first (one rename), then gone: a crash in between leaves only a tombstone.
      char suffix[24];
      std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
      fs::path tomb = p.parent_path() / (std::string(kTombstone) + p.filename().string() + "-" + suffix);
      if (::rename(p.c_str(), tomb.c_str()) != 0) {
        l["errors"].push_back(
            {{"path", rel}, {"message", std::string("rename to tombstone: ") + std::strerror(errno)}});
        continue;
      }
      std::error_code ec;
      fs::remove_all(tomb, ec);  // never follows symlinks: a link is removed, not its target
      if (ec)
        l["errors"].push_back(
            {{"path", rel}, {"message", "remove: " + ec.message() + " (tombstone left, swept next time)"}});
      if (name == "runs") store::clear_live_marker(o.root, first);
      if (!owner.empty()) run::Workspace::prune(owner);
      log::Event ev;
      ev.lane = log::Lane::governance;
      ev.correlation_kind = "retention";
      ev.correlation_id = name;
      if (name == "runs") ev.run_id = first;
      ev.component = "retention";
      ev.message = "deleted " + name + "/" + rel + ": " + c.value("reason", "");
      ev.fields = {
          {"lane", name}, {"path", rel}, {"bytes", c.value("bytes", 0LL)}, {"reason", c.value("reason", "")}};
      log::emit(ev);
      l["deleted"].push_back(rel);
      reclaimed += c.value("bytes", 0LL);
    }
    l["reclaimed_bytes"] = reclaimed;
    lanes[name] = l;
  }
  json report = finish_report(o.root, "apply", lanes, policy, t0);
  record_apply(o, report);
  return report;
}

}  // namespace cp::retention
