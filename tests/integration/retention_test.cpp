// Retention lanes on generated trees (ages set with utimensat): TTL, keep-last-N, caps, protected
// entries, symlinks out of the lane, live and awaiting-approval runs, plan-then-apply exactness, tombstones.
#include "integration/serve_fixture.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

namespace cp::test {
namespace {

// Sets the mtime of `p` and everything below it to `days` ago, without following symlinks.
void age(const fs::path& p, double days) {
  timespec ts[2];
  ::clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= static_cast<time_t>(days * 86400);
  ts[1] = ts[0];
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(p)))
    for (const auto& e : fs::recursive_directory_iterator(p, ec))
      ::utimensat(AT_FDCWD, e.path().c_str(), ts, AT_SYMLINK_NOFOLLOW);
  ::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

// Writes `entry`/`file` and ages the whole entry (its folder included) to `days` ago.
void make(const fs::path& entry, const std::string& file, size_t bytes, double days) {
  write_file(entry / file, std::string(bytes, 'x'));
  age(entry, days);
}

struct Retention : ::testing::Test {
  RunProject p;
  json queue_contract_json() const { return queue_contract(p, "queued", {"true"}); }
  fs::path rc = p.dir / ".runtime-cache";
  void policy(const json& lanes, json protected_patterns = json::array({"**/backups/**"})) {
    write_file(p.dir / "policies/retention_policy.json", json{{"policy", "retention_policy"},
                                                              {"version", 1},
                                                              {"lanes", lanes},
                                                              {"protected_patterns", protected_patterns}}
                                                             .dump(2));
  }
  json plan(std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"--root", p.dir.path().string(), "retention", "plan", "--json"};
    a.insert(a.end(), extra.begin(), extra.end());
    Ran r = host(a);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    json j = json::parse(r.out, nullptr, false);
    expect_valid("retention_report", j, "plan report");
    return j;
  }
  json apply(std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"--root", p.dir.path().string(), "retention", "apply", "--json"};
    a.insert(a.end(), extra.begin(), extra.end());
    Ran r = host(a);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    json j = json::parse(r.out, nullptr, false);
    expect_valid("retention_report", j, "apply report");
    return j;
  }
  static std::set<std::string> paths(const json& lane, const char* key = "candidates") {
    std::set<std::string> s;
    for (const auto& c : lane[key])
      s.insert(c.is_string() ? c.get<std::string>() : c["path"].get<std::string>());
    return s;
  }
};

TEST_F(Retention, TtlKeepLastAndProtectedEntries) {
  policy({{"cache", {{"ttl_days", 3}, {"keep_last", 1}, {"protected_patterns", {"runtime/pinned-*"}}}}});
  make(rc / "cache/runtime/old", "a.bin", 100, 10);
  make(rc / "cache/runtime/older", "b.bin", 100, 20);
  make(rc / "cache/test/recent", "c.bin", 100, 1);
  make(rc / "cache/build/oldest-but-newest-kept", "f", 100, 30);
  make(rc / "cache/runtime/pinned-tool", "d.bin", 100, 40);
  make(rc / "cache/runtime/backups", "e.bin", 100, 40);
  // One file inside an old folder is new: the folder's age is its newest content.
  make(rc / "cache/runtime/old-with-new-file", "x", 10, 10);
  write_file(rc / "cache/runtime/old-with-new-file/y", "y");
  age(rc / "cache/runtime/old-with-new-file/y", 0.5);
  json r = plan();
  const json& lane = r["lanes"]["cache"];
  EXPECT_EQ(paths(lane),
            (std::set<std::string>{"runtime/old", "runtime/older", "build/oldest-but-newest-kept"}))
      << lane.dump(2);
  std::set<std::string> held = paths(lane, "held");
  EXPECT_TRUE(held.count("runtime/pinned-tool"));
  EXPECT_TRUE(held.count("runtime/backups")) << "the global protected pattern applies to every lane";
  for (const auto& c : lane["candidates"])
    EXPECT_NE(c["reason"].get<std::string>().find("ttl"), std::string::npos);
  // keep_last 1 kept the newest (old-with-new-file), not by TTL but by count.
  EXPECT_EQ(lane["entries"], 7);
  // A plan deletes nothing.
  EXPECT_TRUE(fs::exists(rc / "cache/runtime/old/a.bin"));
  json a = apply();
  EXPECT_EQ(paths(a["lanes"]["cache"], "deleted"), paths(lane));
  EXPECT_FALSE(fs::exists(rc / "cache/runtime/old"));
  EXPECT_TRUE(fs::exists(rc / "cache/runtime/pinned-tool/d.bin"));
  EXPECT_TRUE(fs::exists(rc / "cache/runtime/backups/e.bin"));
  EXPECT_TRUE(fs::exists(rc / "cache/test/recent/c.bin"));
  EXPECT_TRUE(fs::exists(rc / "cache/runtime")) << "a lane's folders are never deleted";
  EXPECT_EQ(a["totals"]["reclaimed_bytes"], lane["candidate_bytes"]);
  EXPECT_TRUE(fs::exists(p.dir / ".runtime-cache/cortexpilot/reports/retention_report.json"));
}

TEST_F(Retention, SizeCapDeletesOldestFirstAndSymlinksNeverLeadOut) {
  policy({{"intake", {{"max_bytes", 2500}}}});
  fs::path in = rc / "cortexpilot/intake";
  for (int i = 0; i < 5; ++i) make(in / ("draft-" + std::to_string(i)), "d.json", 1000, 10 - i);
  // A link to a big folder outside the lane: measured as a link, deleted as a link.
  make(p.dir / "outside", "big.bin", 100000, 50);
  fs::create_directory_symlink(p.dir / "outside", in / "link-out");
  age(in / "link-out", 60);
  json r = plan();
  const json& lane = r["lanes"]["intake"];
  // Oldest first until under the cap: the link (oldest), then draft-0, draft-1, draft-2.
  EXPECT_EQ(paths(lane), (std::set<std::string>{"link-out", "draft-0", "draft-1", "draft-2"}))
      << lane.dump(2);
  for (const auto& c : lane["candidates"]) {
    EXPECT_NE(c["reason"].get<std::string>().find("cap"), std::string::npos);
    if (c["path"] == "link-out") {
      EXPECT_LT(c["bytes"].get<long long>(), 1000) << "the link, not its target";
    }
  }
  EXPECT_FALSE(lane.value("over_cap_after_plan", true)) << lane.dump(2);
  apply();
  EXPECT_FALSE(fs::exists(fs::symlink_status(in / "link-out")));
  EXPECT_TRUE(fs::exists(p.dir / "outside/big.bin")) << "the link's target is untouched";
  EXPECT_TRUE(fs::exists(in / "draft-3"));
  EXPECT_TRUE(fs::exists(in / "draft-4"));
}

TEST_F(Retention, LiveAndAwaitingApprovalRunsAreKeptAndApplyDeletesExactlyThePlan) {
  policy({{"runs", {{"ttl_days", 1}}}, {"worktrees", {{"ttl_days", 1}}}});
  auto first = p.run(p.contract({"true"}));
  ASSERT_FALSE(first.bundle.empty()) << first.ran.err;
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  auto clone = [&](const std::string& id, const std::string& status) {
    fs::copy(first.bundle, runs / id, fs::copy_options::recursive);
    json m = first.manifest;
    m["run_id"] = id;
    m["status"] = status;
    write_file(runs / id / "manifest.json", m.dump());
    age(runs / id, 5);
  };
  clone("old-a", "sealed");
  clone("old-b", "sealed");
  clone("waiting", "awaiting_approval");
  clone("live", "running");
  age(first.bundle, 5);
  // "live" is held by a process (its lock taken, marked live) — as a running cp-host would.
  write_file(runs / ".live/live", "");
  int lock = ::open((runs / "live/.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(::flock(lock, LOCK_EX), 0);
  // A worktree of the live run and an orphan one.
  make(p.dir / ".runtime-cache/cortexpilot/worktrees/live", "f", 10, 5);
  make(p.dir / ".runtime-cache/cortexpilot/worktrees/orphan", "f", 10, 5);

  json r = plan({"--lane", "runs", "--lane", "worktrees"});
  std::string first_id = first.manifest["run_id"];
  EXPECT_EQ(paths(r["lanes"]["runs"]), (std::set<std::string>{"old-a", "old-b", first_id})) << r.dump(2);
  std::map<std::string, std::string> held;
  for (const auto& h : r["lanes"]["runs"]["held"]) held[h["path"]] = h["reason"];
  EXPECT_EQ(held["waiting"], "awaiting approval");
  EXPECT_EQ(held["live"], "in use");
  EXPECT_EQ(paths(r["lanes"]["worktrees"]), (std::set<std::string>{"orphan"}));
  write_file(p.dir / "plan.json", r.dump());

  // Between plan and apply: a new old bundle appears (not in the plan), and old-b starts being used.
  clone("came-later", "sealed");
  int lock_b = ::open((runs / "old-b/.lock").c_str(), O_RDWR);
  ASSERT_EQ(::flock(lock_b, LOCK_EX), 0);
  json a = apply({"--plan", (p.dir / "plan.json").string()});
  const json& lane = a["lanes"]["runs"];
  EXPECT_EQ(paths(lane, "deleted"), (std::set<std::string>{"old-a", first_id}));
  ASSERT_EQ(lane["skipped"].size(), 1u);
  EXPECT_EQ(lane["skipped"][0]["path"], "old-b");
  EXPECT_TRUE(fs::exists(runs / "came-later")) << "apply deletes only what the plan listed";
  EXPECT_TRUE(fs::exists(runs / "waiting"));
  EXPECT_TRUE(fs::exists(runs / "live"));
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/worktrees/orphan"));
  EXPECT_TRUE(fs::exists(p.dir / ".runtime-cache/cortexpilot/worktrees/live"));
  ::close(lock);
  ::close(lock_b);
  // `runs list` shows exactly what is left.
  Ran list = p.runs({"list", "--json"});
  json lj = json::parse(list.out);
  std::set<std::string> listed;
  for (const auto& run : lj["runs"]) listed.insert(run["run_id"]);
  EXPECT_EQ(listed, (std::set<std::string>{"old-b", "waiting", "live", "came-later"})) << list.out;
}

TEST_F(Retention, AWorktreeGoesWithItsRegistrationInTheRepo) {
  policy({{"worktrees", {{"ttl_days", 1}}}});
  auto r = p.run(p.contract({"true"}));
  fs::path wt = p.dir / ".runtime-cache/cortexpilot/worktrees/left-behind";
  Ran add = sh("git worktree add --detach -q " + wt.string() + " HEAD", p.repo);
  ASSERT_EQ(add.exit_code, 0) << add.err;
  age(wt, 3);
  json a = apply({"--lane", "worktrees"});
  EXPECT_EQ(paths(a["lanes"]["worktrees"], "deleted"), (std::set<std::string>{"left-behind"}));
  Ran list = sh("git worktree list --porcelain", p.repo);
  EXPECT_EQ(list.out.find("left-behind"), std::string::npos) << list.out;
}

TEST_F(Retention, ATombstoneFromACrashIsInvisibleAndSwept) {
  policy({{"runs", {{"ttl_days", 30}}}});
  auto first = p.run(p.contract({"true"}));
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  // What a crash between the rename and the removal leaves: a bundle under a tombstone name.
  fs::copy(first.bundle, runs / ".cp-tombstone-gone-0123456789abcdef", fs::copy_options::recursive);
  Ran list = p.runs({"list", "--json"});
  EXPECT_EQ(json::parse(list.out)["runs"].size(), 1u) << list.out;
  json r = plan();
  EXPECT_EQ(r["lanes"]["runs"]["tombstones_swept"], 1);
  EXPECT_FALSE(fs::exists(runs / ".cp-tombstone-gone-0123456789abcdef"));
  EXPECT_TRUE(fs::exists(first.bundle));
}

TEST_F(Retention, MachineCacheOnlyAutoCleanChildrenUnderTheCap) {
  fs::path mc = p.dir / "home-cache/cortexpilot";
  policy({{"machine_cache",
           {{"root", mc.string()},
            {"max_bytes", 5000},
            {"auto_clean_children", {"tmp"}},
            {"protected_patterns", {"browser/**"}}}}});
  make(mc / "browser", "profile/Cookies", 4500, 100);
  make(mc / "models", "m.bin", 1000, 100);
  for (int i = 0; i < 4; ++i) make(mc / "tmp" / ("t" + std::to_string(i)), "f", 1000, 10 - i);
  json r = plan();
  const json& lane = r["lanes"]["machine_cache"];
  // 9500 bytes over a 5000 cap: only tmp/ children can go, oldest first, until under the cap or none left.
  EXPECT_EQ(paths(lane), (std::set<std::string>{"tmp/t0", "tmp/t1", "tmp/t2", "tmp/t3"})) << lane.dump(2);
  std::map<std::string, std::string> held;
  for (const auto& h : lane["held"]) held[h["path"]] = h["reason"];
  EXPECT_EQ(held["browser"], "not marked auto-clean");
  EXPECT_EQ(held["models"], "not marked auto-clean");
  EXPECT_EQ(lane.value("over_cap_after_plan", false), true) << lane.dump(2);
  EXPECT_EQ(r["machine_cache_summary"]["root"], mc.string());
  EXPECT_EQ(r["machine_cache_summary"].value("over_cap", false), true) << r["machine_cache_summary"].dump();
  apply();
  EXPECT_TRUE(fs::exists(mc / "browser/profile/Cookies"));
  EXPECT_TRUE(fs::exists(mc / "tmp")) << "the auto-clean child itself stays";
  EXPECT_FALSE(fs::exists(mc / "tmp/t0"));
}

TEST_F(Retention, TheMachineCacheFollowsXdgCacheHome) {
  policy({{"machine_cache", {{"root", "~/.cache/cortexpilot"}, {"max_bytes", 5000}}}});
  const fs::path xdg = p.dir / "xdg-cache";
  make(xdg / "cortexpilot/models", "m.bin", 100, 1);
  Ran r = cp::test::run_env({CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", p.dir.path().string(),
                             "retention", "plan", "--json"},
                            {"XDG_CACHE_HOME=" + xdg.string(), "HOME=" + (p.dir / "home").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["machine_cache_summary"]["root"], (xdg / "cortexpilot").string());
  EXPECT_EQ(j["machine_cache_summary"]["exists"], true);
}

TEST_F(Retention, ServeRunsRetentionOnASchedule) {
  policy({{"cache", {{"ttl_days", 1}}}});
  make(rc / "cache/build/stale", "f", 100, 5);
  make(rc / "cache/build/fresh", "f", 100, 0);
  ServeProcess serve(p, {"--no-scheduler", "--retention-every", "0.0003"});  // about a second
  ASSERT_NE(serve.port(), 0) << serve.output();
  EXPECT_TRUE(wait_until([&] { return !fs::exists(rc / "cache/build/stale"); }, std::chrono::seconds(20)))
      << serve.output();
  EXPECT_TRUE(fs::exists(rc / "cache/build/fresh"));
  // Each deletion is a governance event.
  EXPECT_TRUE(wait_until([&] { return fs::exists(rc / "logs/governance/governance.jsonl"); },
                         std::chrono::seconds(5)));
  std::string gov = read_file(rc / "logs/governance/governance.jsonl");
  EXPECT_NE(gov.find("\"correlation_kind\":\"retention\""), std::string::npos) << gov;
  EXPECT_NE(gov.find("build/stale"), std::string::npos);
}

TEST_F(Retention, LogsCodexHomeAndContractArtifactsLanes) {
  policy({{"logs", {{"ttl_days", 7}}},
          {"codex_home", {{"ttl_days", 7}}},
          {"contract_artifacts", {{"ttl_days", 7}}}});
  // Logs: rotated files go by age; each lane's active file stays whatever its age.
  make(rc / "logs/access", "access.20260101T000000.000Z-0000.jsonl.gz", 300, 30);
  make(rc / "logs/access", "access.jsonl", 100, 30);
  age(rc / "logs/access/access.jsonl", 30);
  make(rc / "logs/runtime", "runtime.20261120T000000.000Z-0001.jsonl.gz", 300, 2);
  // CODEX_HOME copies: one of a live run (its bundle locked), one of a finished run.
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  write_file(runs / "live-run/manifest.json", R"({"status":"running"})");
  write_file(runs / ".live/live-run", "");
  int lock = ::open((runs / "live-run/.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(::flock(lock, LOCK_EX), 0);
  make(rc / "cortexpilot/codex-home/live-run", "config.toml", 10, 30);
  make(rc / "cortexpilot/codex-home/done-run", "config.toml", 10, 30);
  // Contract snapshots: one of a waiting queue item, one of nothing in the queue.
  write_file(p.dir / "c.json", queue_contract_json().dump());
  Ran sub = host({"--root", p.dir.path().string(), "queue", "submit", (p.dir / "c.json").string(), "--repo",
                  p.repo.string(), "--json"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::string snap = fs::path(json::parse(sub.out)["contract_path"].get<std::string>()).filename();
  age(rc / "cortexpilot/queue/contracts" / snap, 30);
  make(rc / "cortexpilot/queue/contracts", "q-old-gone.json", 50, 30);
  age(rc / "cortexpilot/queue/contracts/q-old-gone.json", 30);

  json r = plan();
  EXPECT_EQ(paths(r["lanes"]["logs"]),
            (std::set<std::string>{"access/access.20260101T000000.000Z-0000.jsonl.gz"}))
      << r["lanes"]["logs"].dump(2);
  std::map<std::string, std::string> held;
  for (const auto& h : r["lanes"]["logs"]["held"]) held[h["path"]] = h["reason"];
  EXPECT_EQ(held["access/access.jsonl"], "the active log file");
  EXPECT_EQ(paths(r["lanes"]["codex_home"]), (std::set<std::string>{"done-run"}));
  EXPECT_EQ(paths(r["lanes"]["contract_artifacts"]), (std::set<std::string>{"q-old-gone.json"}))
      << r["lanes"]["contract_artifacts"].dump(2);
  EXPECT_EQ(r["log_lane_summary"]["access"]["gz_files"], 1);
  apply();
  EXPECT_TRUE(fs::exists(rc / "logs/access/access.jsonl"));
  EXPECT_TRUE(fs::exists(rc / "cortexpilot/codex-home/live-run"));
  EXPECT_TRUE(fs::exists(rc / "cortexpilot/queue/contracts" / snap));
  EXPECT_FALSE(fs::exists(rc / "cortexpilot/queue/contracts/q-old-gone.json"));
  ::close(lock);
}

// A child process holding flock(LOCK_EX) on `lock` (one process: the shell execs into sleep with the locked
// descriptor), as a browser run holds its profile's lock. Killed, with the lock, when the object dies.
class LockHolder {
 public:
  explicit LockHolder(const fs::path& lock) : lock_(lock) {
    std::string line = "exec 9<'" + lock.string() + "' && flock -x 9 && exec sleep 300";
    const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
    EXPECT_EQ(posix_spawn(&pid_, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
    EXPECT_TRUE(wait_until([&] { return held(); }, std::chrono::seconds(10))) << "the child took no lock";
  }
  ~LockHolder() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool held() const {
    int fd = ::open(lock_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return busy;
  }

 private:
  fs::path lock_;
  pid_t pid_ = -1;
};

TEST_F(Retention, BrowserProfilesALiveRunsLockProtectsItsProfile) {
  policy({{"browser_profiles", {{"ttl_days", 7}}}});
  fs::path bp = rc / "cortexpilot/browser-profiles";
  make(bp / "held", "Default/Cookies", 100, 30);
  write_file(bp / "held.lock", "");
  make(bp / "stale", "Default/Cookies", 200, 30);
  write_file(bp / "stale.lock", "");
  make(bp / "never-locked", "Default/Preferences", 50, 30);
  make(bp / "fresh", "Default/Cookies", 100, 1);
  write_file(bp / "fresh.lock", "");
  auto holder = std::make_unique<LockHolder>(bp / "held.lock");

  json r = plan({"--lane", "browser_profiles"});
  const json& lane = r["lanes"]["browser_profiles"];
  EXPECT_EQ(lane["lane_root"], bp.string());
  EXPECT_EQ(paths(lane), (std::set<std::string>{"stale", "never-locked"})) << lane.dump(2);
  std::map<std::string, std::string> held;
  for (const auto& h : lane["held"]) held[h["path"]] = h["reason"];
  EXPECT_EQ(held["held"], "in use by a live run") << lane.dump(2);
  EXPECT_EQ(lane["entries"], 4) << "lock files are not profiles";

  json a = apply({"--lane", "browser_profiles"});
  EXPECT_EQ(paths(a["lanes"]["browser_profiles"], "deleted"),
            (std::set<std::string>{"stale", "never-locked"}));
  EXPECT_FALSE(fs::exists(bp / "stale"));
  EXPECT_FALSE(fs::exists(bp / "never-locked"));
  EXPECT_TRUE(fs::exists(bp / "stale.lock")) << "a lock file is never removed";
  EXPECT_TRUE(fs::exists(bp / "held/Default/Cookies"));
  EXPECT_TRUE(fs::exists(bp / "fresh/Default/Cookies"));

  // The run ends: its profile becomes a candidate. A new run locks it between plan and apply: apply
  // re-checks the lock and leaves the profile alone.
  holder.reset();
  json again = plan({"--lane", "browser_profiles"});
  EXPECT_EQ(paths(again["lanes"]["browser_profiles"]), (std::set<std::string>{"held"}));
  write_file(p.dir / "plan.json", again.dump());
  LockHolder second(bp / "held.lock");
  json b = apply({"--plan", (p.dir / "plan.json").string()});
  const json& lb = b["lanes"]["browser_profiles"];
  EXPECT_TRUE(lb["deleted"].empty()) << lb.dump(2);
  ASSERT_EQ(lb["skipped"].size(), 1u) << lb.dump(2);
  EXPECT_EQ(lb["skipped"][0]["path"], "held");
  EXPECT_EQ(lb["skipped"][0]["reason"], "in use by a live run");
  EXPECT_TRUE(fs::exists(bp / "held/Default/Cookies"));
}

TEST_F(Retention, BadPolicyAndUnknownLaneAreUsageErrors) {
  write_file(p.dir / "policies/retention_policy.json",
             R"({"policy": "retention_policy", "lanes": {"runs": {"ttl_days": -1}}})");
  Ran r = host({"--root", p.dir.path().string(), "retention", "plan"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/lanes/runs/ttl_days"), std::string::npos) << r.err;
  policy({{"runs", {{"ttl_days", 1}}}});
  Ran u = host({"--root", p.dir.path().string(), "retention", "plan", "--lane", "nope"});
  EXPECT_EQ(u.exit_code, 2);
  EXPECT_NE(u.err.find("lane 'nope'"), std::string::npos) << u.err;
}

// A plan file is input: one whose lane_root points elsewhere (here the project root, where a candidate names
// a file no lane governs) is refused for that lane, and nothing there is touched.
TEST_F(Retention, APlanThatMovesALaneIsRefusedAndDeletesNothing) {
  policy({{"cache", {{"ttl_days", 1}}}});
  make(rc / "cache/build/stale", "f", 100, 5);
  write_file(p.dir / "precious/keep.txt", "keep");
  json r = plan();
  r["lanes"]["cache"]["lane_root"] = p.dir.path().string();
  r["lanes"]["cache"]["candidates"] = json::array({{{"path", "precious"}, {"bytes", 4}, {"reason", "ttl"}}});
  write_file(p.dir / "plan.json", r.dump());
  Ran a = host({"--root", p.dir.path().string(), "retention", "apply", "--json", "--plan",
                (p.dir / "plan.json").string()});
  EXPECT_EQ(a.exit_code, 1) << "a lane error: " << a.out << a.err;
  json rep = json::parse(a.out);
  EXPECT_TRUE(rep["lanes"]["cache"]["deleted"].empty());
  ASSERT_FALSE(rep["lanes"]["cache"]["errors"].empty());
  EXPECT_NE(rep["lanes"]["cache"]["errors"][0]["message"].get<std::string>().find("policy"),
            std::string::npos);
  EXPECT_EQ(read_file(p.dir / "precious/keep.txt"), "keep");
  EXPECT_TRUE(fs::exists(rc / "cache/build/stale/f"));
}

}  // namespace
}  // namespace cp::test
