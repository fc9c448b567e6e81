// The retention lanes: one plugin per lane of policies/retention_policy.json. Each plans only: it lists
// what its policy says may go (TTL, keep-last-N, size cap), and why, and never deletes anything; the host
// applies a plan after re-checking every entry (cp-host retention apply).
//
// Input (from the host): {lane, lane_root, project_root, now, policy: {ttl_days, keep_last, max_bytes,
// protected_patterns, auto_clean_children}, in_use: [names the host knows are live: running runs, their
// worktrees, queued contracts]}. Output: schemas/retention_plan.schema.json.
#include "../common/path_match.hpp"
#include "../common/retention_walk.hpp"

#include <cortexpilot/plugin.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

namespace {

using nlohmann::json;

struct Entry {
  std::string rel;  // relative to the lane root
  cp::plugins::TreeSum sum;
  std::string hold;  // why it must stay (protected, in use, not sealed...); empty when it may go
};

bool is_protected(const std::vector<std::string>& patterns, const std::string& rel, std::string& which) {
  for (const auto& p : patterns)
    if (cp::plugins::path_allowed(p, rel) || cp::plugins::path_allowed(p, rel + "/.")) {
      which = p;
      return true;
    }
  return false;
}

std::string days(int64_t secs) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", static_cast<double>(secs) / 86400.0);
  return b;
}

class Lane : public cp::RetentionLane {
 public:
  explicit Lane(std::string id) : id_(std::move(id)) {}

  std::string plan(cp::Context&, const std::string& input) override {
    json in = json::parse(input);
    const std::string root = in.at("lane_root");
    const json pol = in.value("policy", json::object());
    const int64_t now = in.value("now", int64_t{0});
    std::vector<std::string> patterns = pol.value("protected_patterns", std::vector<std::string>{});
    std::set<std::string> in_use;
    for (const auto& u : in.value("in_use", json::array())) in_use.insert(u.get<std::string>());

    std::vector<Entry> entries = enumerate(root, pol);
    json out{{"lane", in.value("lane", id_)},
             {"lane_root", root},
             {"candidates", json::array()},
             {"held", json::array()},
             {"errors", json::array()}};
    uint64_t total = 0, files = 0;
    std::vector<Entry*> free;
    for (auto& e : entries) {
      for (const auto& err : e.sum.errors) out["errors"].push_back({{"path", e.rel}, {"message", err}});
      if (e.sum.vanished) continue;
      total += e.sum.bytes;
      files += e.sum.files;
      std::string which;
      if (e.hold.empty() && is_protected(patterns, e.rel, which)) e.hold = "protected by " + which;
      if (e.hold.empty() && in_use.count(e.rel)) e.hold = "in use";
      if (e.hold.empty()) e.hold = lane_hold(root, e.rel);
      if (!e.hold.empty())
        out["held"].push_back({{"path", e.rel}, {"reason", e.hold}, {"bytes", e.sum.bytes}});
      else
        free.push_back(&e);
    }
    // Newest first; the first keep_last stay whatever their age.
    std::sort(free.begin(), free.end(), [](const Entry* a, const Entry* b) {
      return a->sum.newest != b->sum.newest ? a->sum.newest > b->sum.newest : a->rel > b->rel;
    });
    size_t keep_last = pol.value("keep_last", size_t{0});
    std::vector<std::pair<Entry*, std::string>> chosen;
    std::vector<Entry*> rest;
    for (size_t i = 0; i < free.size(); ++i) {
      Entry* e = free[i];
      if (i < keep_last) continue;
      double ttl = pol.value("ttl_days", -1.0);
      int64_t age = now - e->sum.newest;
      if (ttl >= 0 && age > static_cast<int64_t>(ttl * 86400))
        chosen.emplace_back(e, "ttl: newest content " + days(age) + " days old, over " +
                                   days(static_cast<int64_t>(ttl * 86400)));
      else
        rest.push_back(e);
    }
    // The size cap: oldest first until the lane fits.
    uint64_t after = total;
    for (const auto& c : chosen) after -= c.first->sum.bytes;
    if (pol.contains("max_bytes")) {
      uint64_t cap = pol["max_bytes"].get<uint64_t>();
      for (auto it = rest.rbegin(); it != rest.rend() && after > cap; ++it) {
        chosen.emplace_back(
            *it, "cap: lane holds " + std::to_string(after) + " bytes, over " + std::to_string(cap));
        after -= (*it)->sum.bytes;
      }
      out["over_cap_after_plan"] = after > cap;
    }
    uint64_t cand_bytes = 0;
    for (const auto& [e, why] : chosen) {
      out["candidates"].push_back({{"path", e->rel},
                                   {"bytes", e->sum.bytes},
                                   {"files", e->sum.files},
                                   {"newest_mtime", e->sum.newest},
                                   {"reason", why}});
      cand_bytes += e->sum.bytes;
    }
    out["entries"] = entries.size();
    out["files"] = files;
    out["bytes"] = total;
    out["candidate_bytes"] = cand_bytes;
    return out.dump();
  }

 protected:
  // The entries retention judges, relative to the lane root. Default: the root's children.
  virtual std::vector<Entry> enumerate(const std::string& root, const json&) {
    std::vector<Entry> v;
    for (const auto& name : cp::plugins::children(root))
      v.push_back({name, cp::plugins::measure(root + "/" + name), ""});
    return v;
  }
  // A lane's own reason to keep an entry; empty when it may go.
  virtual std::string lane_hold(const std::string&, const std::string&) { return {}; }

  // Entries one level further down: <root>/<group>/<name>, for lanes grouped by folder.
  static std::vector<Entry> grouped(const std::string& root, const std::vector<std::string>& groups) {
    std::vector<Entry> v;
    for (const auto& g : groups)
      for (const auto& name : cp::plugins::children(root + "/" + g))
        v.push_back({g + "/" + name, cp::plugins::measure(root + "/" + g + "/" + name), ""});
    return v;
  }

  std::string id_;
};

// Run bundles: only sealed ones may go; a run awaiting approval, running, or unreadable stays.
class RunsLane : public Lane {
 public:
  RunsLane() : Lane("runs") {}

 protected:
  std::string lane_hold(const std::string& root, const std::string& rel) override {
    std::ifstream in(root + "/" + rel + "/manifest.json");
    json m = json::parse(in, nullptr, false);
    if (!m.is_object()) return "no readable manifest (left for `cp-host runs recover`)";
    std::string st = m.value("status", "");
    if (st == "awaiting_approval") return "awaiting approval";
    if (st != "sealed") return "not sealed (status " + st + ")";
    return {};
  }
};

// Log files: every file under each lane folder but the one being written (<lane>.jsonl).
class LogsLane : public Lane {
 public:
  LogsLane() : Lane("logs") {}

 protected:
  std::vector<Entry> enumerate(const std::string& root, const json&) override {
    std::vector<Entry> v = grouped(root, cp::plugins::children(root));
    for (auto& e : v) {
      auto slash = e.rel.find('/');
      if (e.rel.substr(slash + 1) == e.rel.substr(0, slash) + ".jsonl") e.hold = "the active log file";
    }
    return v;
  }
};

// Caches: the children of runtime/, test/ and build/ under the cache root.
class CacheLane : public Lane {
 public:
  CacheLane() : Lane("cache") {}

 protected:
  std::vector<Entry> enumerate(const std::string& root, const json&) override {
    return grouped(root, {"runtime", "test", "build"});
  }
};

// The machine cache (~/.cache/cortexpilot): only the contents of children marked auto-clean are
// candidates; everything else is measured for the cap but never chosen.
class MachineCacheLane : public Lane {
 public:
  MachineCacheLane() : Lane("machine_cache") {}

 protected:
  std::vector<Entry> enumerate(const std::string& root, const json& pol) override {
    std::set<std::string> auto_clean;
    for (const auto& c : pol.value("auto_clean_children", json::array()))
      auto_clean.insert(c.get<std::string>());
    std::vector<Entry> v;
    for (const auto& child : cp::plugins::children(root)) {
      if (auto_clean.count(child)) {
        auto sub = grouped(root, {child});
        v.insert(v.end(), sub.begin(), sub.end());
      } else {
        v.push_back({child, cp::plugins::measure(root + "/" + child), "not marked auto-clean"});
      }
    }
    return v;
  }
};

// The browser runner's persistent profiles, <runtime root>/browser-profiles/<name>/ (the lane root): a
// profile whose sibling lock file <name>.lock a live run holds (flock) is never a candidate. Only folders are
// entries; lock files are never planned: removing one while a run opens it would let the next run lock a
// new file of the same name and share the profile.
class BrowserProfilesLane : public Lane {
 public:
  BrowserProfilesLane() : Lane("browser_profiles") {}

 protected:
  std::vector<Entry> enumerate(const std::string& root, const json&) override {
    std::vector<Entry> v;
    for (const auto& name : cp::plugins::children(root)) {
      struct stat st {};
      if (::lstat((root + "/" + name).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      v.push_back({name, cp::plugins::measure(root + "/" + name), ""});
    }
    return v;
  }
  std::string lane_hold(const std::string& root, const std::string& rel) override {
    const std::string lock = root + "/" + rel + ".lock";
    int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
      if (errno == ENOENT) return {};
      return "its lock file " + rel + ".lock cannot be opened (" + std::strerror(errno) + ")";
    }
    std::string hold;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
      hold = errno == EWOULDBLOCK
                 ? "in use by a live run"
                 : "its lock file cannot be locked (" + std::string(std::strerror(errno)) + ")";
    ::close(fd);  // releases the lock if it was taken
    return hold;
  }
};

template <class L>
class Named : public L {
 public:
  explicit Named(const cp::Context&, const std::string&) {}
};

class Worktrees : public Lane {
 public:
  Worktrees(const cp::Context&, const std::string&) : Lane("worktrees") {}
};
class CodexHome : public Lane {
 public:
  CodexHome(const cp::Context&, const std::string&) : Lane("codex_home") {}
};
class Intake : public Lane {
 public:
  Intake(const cp::Context&, const std::string&) : Lane("intake") {}
};
class ContractArtifacts : public Lane {
 public:
  ContractArtifacts(const cp::Context&, const std::string&) : Lane("contract_artifacts") {}
};

}  // namespace

CP_PLUGIN(
    "cp-retention-lanes", "0.1.0",
    cp::retention_lane<Named<RunsLane>>("retention_runs", "0.1.0",
                                        "Sealed run bundles past TTL, beyond keep_last or over the cap"),
    cp::retention_lane<Worktrees>("retention_worktrees", "0.1.0", "Run worktrees no live run uses"),
    cp::retention_lane<Named<LogsLane>>("retention_logs", "0.1.0", "Rotated log files of every log lane"),
    cp::retention_lane<Named<CacheLane>>("retention_cache", "0.1.0", "Runtime, test and build caches"),
    cp::retention_lane<CodexHome>("retention_codex_home", "0.1.0", "Per-run CODEX_HOME copies"),
    cp::retention_lane<Intake>("retention_intake", "0.1.0", "Intake previews and drafts"),
    cp::retention_lane<ContractArtifacts>("retention_contract_artifacts", "0.1.0",
                                          "Contract snapshots of queue items that have ended"),
    cp::retention_lane<Named<MachineCacheLane>>(
        "retention_machine_cache", "0.1.0",
        "Auto-clean children of ~/.cache/cortexpilot under a total cap; protected subtrees never"),
    cp::retention_lane<Named<BrowserProfilesLane>>(
        "retention_browser_profiles", "0.1.0",
        "Persistent browser profiles unused past their TTL; never one a live run has locked"))
