// Recovery of runs a dead cp-host left behind, through the cp-host binary: the run's cgroup is killed
// (a double-forked, setsid'd survivor with a cleared environment included), leftovers of crashes are swept
// (private TMPDIRs, live markers, half-made bundles, locked worktree registrations), a full disk is met by
// freeing the dead run's worktree, and `runs recover` exits 1 naming what it could not seal.
#include "core/sha256.hpp"
#include "integration/run_project.hpp"
#include "store/event_log.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

extern char** environ;

using namespace cp::test;

namespace {

bool wait_gone(int pid) {
  for (int i = 0; i < 100 && process_alive(pid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return !process_alive(pid);
}

struct CrashProject : RunProject {
  fs::path runtime() const { return dir / ".runtime-cache/cortexpilot"; }
  fs::path runs_dir() const { return runtime() / "runs"; }

  // The only bundle under runs/.
  fs::path bundle() const {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(runs_dir()))
      if (e.path().filename().string()[0] != '.') dirs.push_back(e.path());
    EXPECT_EQ(dirs.size(), 1u);
    return dirs.empty() ? fs::path() : dirs[0];
  }

  // Waits for the run to write `name` into its scratch folder; returns the number it holds, -1 on timeout.
  int wait_scratch(const std::string& name) const {
    for (int i = 0; i < 400; ++i) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(runs_dir(), ec)) {
        fs::path f = e.path() / "artifacts/scratch" / name;
        std::string text = read_file(f);
        if (!text.empty() && text.back() == '\n') return std::stoi(text);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the run never wrote " << name;
    return -1;
  }

  // Runs the hanging script as a contract, then kills cp-host with SIGKILL: a crash mid-run. Returns the
  // pid the script wrote as `name` in its scratch folder.
  int crash_mid_run(const std::string& script, const std::string& name) const {
    pid_t host = spawn_run(contract({"sh " + script}));
    int pid = wait_scratch(name);
    ::kill(host, SIGKILL);
    int status = 0;
    EXPECT_EQ(::waitpid(host, &status, 0), host);
    return pid;
  }

  Ran recover() const { return runs({"recover"}); }
};

}  // namespace

TEST(Recovery, KillsADoubleForkedSetsidSurvivorThroughTheRunCgroupAndSeals) {
  CrashProject p;
  // A double fork: the subshell starts a new session whose sleep drops every environment variable
  // (CP_RUN_ID included) and exits, so the sleep belongs to no process of the run but its cgroup.
  p.commit("scripts/escape.sh",
           "( setsid env -i sleep 300 & echo $! > \"$CP_SCRATCH_DIR/survivor.tmp\"; "
           "mv \"$CP_SCRATCH_DIR/survivor.tmp\" \"$CP_SCRATCH_DIR/survivor.pid\" )\n"
           "sleep 300\n");
  int survivor = p.crash_mid_run("scripts/escape.sh", "survivor.pid");
  ASSERT_GT(survivor, 0);
  fs::path bundle = p.bundle();
  json before = json::parse(read_file(bundle / "manifest.json"));
  ASSERT_EQ(before["status"], "running");
  ASSERT_TRUE(process_alive(survivor));
  if (before["sandbox"].value("process_tree", "") != "cgroup") {
    ::kill(survivor, SIGKILL);
    GTEST_SKIP() << "runs here are not held in a cgroup: " << before["sandbox"].dump();
  }
  // Nothing but the cgroup knows it: it left its session and carries no CP_RUN_ID. The pid is written
  // as soon as the fork returns, so wait for the `setsid` → `env -i` → `sleep` exec chain to finish first.
  const std::string proc = "/proc/" + std::to_string(survivor);
  for (int i = 0; i < 200 && proc_file(proc, "comm") != "sleep\n"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  if (proc_file(proc, "comm") != "sleep\n") {
    ::kill(survivor, SIGKILL);
    FAIL() << "the survivor never became sleep: " << proc_file(proc, "comm");
  }
  EXPECT_EQ(proc_file(proc, "environ").find("CP_RUN_ID="), std::string::npos);
  fs::path cgroup = before["sandbox"]["cgroup"].get<std::string>();
  EXPECT_TRUE(fs::exists(cgroup));
  const std::string run_id = before["run_id"];
  EXPECT_TRUE(fs::is_directory(p.runtime() / "tmp" / run_id));  // the run's private TMPDIR

  Ran r = p.recover();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("recovered " + run_id + ": error (host_interrupted)"), std::string::npos) << r.out;
  EXPECT_TRUE(wait_gone(survivor)) << "pid " << survivor << " outlived recovery";
  EXPECT_FALSE(fs::exists(cgroup)) << "the run's cgroup was not removed";

  json m = json::parse(read_file(bundle / "manifest.json"));
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["verdict"], "error");
  EXPECT_EQ(m["reason"], "host_interrupted");
  expect_valid("run_manifest", m, "manifest");
  std::vector<json> events;
  std::ifstream in(bundle / "events.jsonl");
  for (std::string line; std::getline(in, line);) events.push_back(json::parse(line));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["type"], "RUN_SEALED");
  // At least the survivor (the script's own sleep may not have started when the host was killed).
  EXPECT_GE(events.back()["payload"]["killed_processes"].get<int>(), 1);
  EXPECT_FALSE(events.back()["payload"].contains("surviving_processes"));
  expect_valid("event", events.back(), "RUN_SEALED");
  EXPECT_EQ(p.runs({"verify", run_id}).exit_code, 0);
  EXPECT_FALSE(fs::exists(p.runtime() / "tmp" / run_id));
  EXPECT_FALSE(fs::exists(p.runs_dir() / ".live" / run_id));
  EXPECT_EQ(p.recover().out, "nothing to recover\n");
}

TEST(Recovery, SweepsStaleTmpDirsLiveMarkersHalfMadeBundlesAndLockedWorktrees) {
  CrashProject p;
  p.commit("scripts/wait.sh", "echo $$ > \"$CP_SCRATCH_DIR/wait.pid\"\nsleep 300\n");
  int script = p.crash_mid_run("scripts/wait.sh", "wait.pid");
  ASSERT_GT(script, 0);
  fs::path bundle = p.bundle();
  json before = json::parse(read_file(bundle / "manifest.json"));
  const std::string run_id = before["run_id"];
  // A crash inside `git worktree add` leaves the registration locked and its folder half made: the folder
  // is gone here, the lock stays, and `git worktree prune` alone would keep the registration forever.
  fs::path wt = before["worktree"].get<std::string>();
  fs::path admin;
  for (const auto& e : fs::directory_iterator(p.repo / ".git/worktrees"))
    if (read_file(e.path() / "gitdir").find(run_id) != std::string::npos) admin = e.path();
  ASSERT_FALSE(admin.empty());
  fs::remove_all(wt);
  write_file(admin / "locked", "initializing\n");

  // Leftovers of other crashes, all older than a minute.
  auto old = fs::file_time_type::clock::now() - std::chrono::minutes(10);
  fs::path ghost_tmp = p.runtime() / "tmp/ghost-run-1";
  write_file(ghost_tmp / "junk", "x");
  fs::path ghost_marker = p.runs_dir() / ".live/ghost-run-2";
  write_file(ghost_marker, "");
  fs::path half_made = p.runs_dir() / ".incoming/ghost-run-3";
  write_file(half_made / "manifest.json", "{}");
  write_file(p.runs_dir() / ".live/ghost-run-3", "");
  for (const auto& f : {ghost_tmp, ghost_marker, half_made, p.runs_dir() / ".live/ghost-run-3"})
    fs::last_write_time(f, old);
  // A marker made a moment ago may be a bundle another process is creating right now: it stays.
  fs::path fresh_marker = p.runs_dir() / ".live/fresh-run-4";
  write_file(fresh_marker, "");

  Ran r = p.recover();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("recovered " + run_id), std::string::npos) << r.out;
  EXPECT_TRUE(wait_gone(script));
  for (const auto& gone : {ghost_tmp, ghost_marker, half_made, p.runs_dir() / ".live/ghost-run-3",
                           p.runtime() / "tmp" / run_id, p.runs_dir() / ".live" / run_id})
    EXPECT_FALSE(fs::exists(gone)) << gone << " survived recovery\n" << r.out;
  EXPECT_NE(r.out.find("cleaned tmp/ghost-run-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cleaned runs/.live/ghost-run-2"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(fresh_marker));
  // The locked registration of the dead run's worktree is gone from the repository.
  EXPECT_FALSE(fs::exists(admin)) << r.out;
  EXPECT_EQ(sh("git worktree list --porcelain", p.repo).out.find(run_id), std::string::npos);
  json m = json::parse(read_file(bundle / "manifest.json"));
  EXPECT_EQ(m["status"], "sealed");
}

TEST(Recovery, RecoverExitsOneNamingABundleItCannotSealAndStillSealsTheOthers) {
  CrashProject p;
  fs::path runs = p.runs_dir();
  // Damaged beyond repair: the manifest is not JSON, and the log it could be rebuilt from is a folder.
  fs::path broken = runs / "broken-run-1";
  write_file(broken / "manifest.json", "{\"run_id\": \"broken-run-1\", \"sta");
  fs::create_directories(broken / "events.jsonl");
  write_file(runs / ".live/broken-run-1", "");
  // Damaged but recoverable: the manifest is torn, the log says what the run was.
  fs::path torn = runs / "torn-run-2";
  {
    fs::create_directories(torn / "reports");
    write_file(torn / "contract.json", "{}");  // every bundle holds its compiled contract
    cp::store::EventLog log(torn / "events.jsonl", "torn-run-2");
    log.append("RUN_STARTED", {{"task_id", "fix-greeting"},
                               {"contract_sha256", cp::core::sha256_hex("{}")},
                               {"runner", "tool"},
                               {"pack", "medium"},
                               {"repo", p.repo.string()},
                               {"host_version", "0"}});
  }
  write_file(torn / "manifest.json", "{\"run_id\": ");
  // A plain crashed bundle: its manifest says running, its log is empty.
  fs::path plain = runs / "plain-run-3";
  write_file(plain / "manifest.json", json{{"schema_version", 1},
                                           {"run_id", "plain-run-3"},
                                           {"task_id", "fix-greeting"},
                                           {"contract_sha256", std::string(64, 'b')},
                                           {"runner", "tool"},
                                           {"status", "running"},
                                           {"created_at", "2026-01-01T00:00:00.000Z"},
                                           {"plugins", json::array()}}
                                          .dump());
  write_file(plain / "events.jsonl", "");

  Ran r = p.recover();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot recover run broken-run-1"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("recovered plain-run-3: error (host_interrupted)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("recovered torn-run-2"), std::string::npos) << r.out;
  json t = json::parse(read_file(torn / "manifest.json"));
  EXPECT_EQ(t["status"], "sealed");
  EXPECT_EQ(t["task_id"], "fix-greeting");
  EXPECT_NE(t["reason"].get<std::string>().find("rebuilt from events.jsonl"), std::string::npos);
  expect_valid("run_manifest", t, "rebuilt manifest");
  EXPECT_EQ(p.runs({"verify", "torn-run-2"}).exit_code, 0);
  expect_valid("run_manifest", json::parse(read_file(plain / "manifest.json")), "plain manifest");
  // The broken one stays marked for the next attempt; the others do not.
  EXPECT_TRUE(fs::exists(runs / ".live/broken-run-1"));

  // Other commands are not wedged by it: they say what is wrong and go on.
  Ran list = p.runs({"list", "--json"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.err.find("broken-run-1"), std::string::npos) << list.err;
  // Every later recover says so again, until someone deals with the bundle.
  Ran again = p.recover();
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("broken-run-1"), std::string::npos) << again.err;
  fs::remove_all(broken);
  EXPECT_EQ(p.recover().exit_code, 0);
}

TEST(Recovery, OnAFullDiskTheDeadRunsWorktreeIsFreedAndTheSealRetried) {
  CrashProject p;
  // The runtime folder on a small filesystem of its own, so that it can be filled.
  fs::path cache = p.dir / ".runtime-cache";
  fs::create_directories(cache);
  if (::mount("tmpfs", cache.c_str(), "tmpfs", 0, "size=16m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << ")";
  struct Unmount {
    fs::path at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{cache};

  p.commit("scripts/wait.sh", "echo $$ > \"$CP_SCRATCH_DIR/wait.pid\"\nsleep 300\n");
  int script = p.crash_mid_run("scripts/wait.sh", "wait.pid");
  ASSERT_GT(script, 0);
  fs::path bundle = p.bundle();
  json before = json::parse(read_file(bundle / "manifest.json"));
  fs::path wt = before["worktree"].get<std::string>();
  ASSERT_TRUE(fs::is_directory(wt));
  // The dead run filled the disk from its worktree.
  Ran fill = sh("dd if=/dev/zero of=" + (wt / "filler.bin").string() + " bs=4096 2>/dev/null; true");
  ASSERT_EQ(::access((wt / "filler.bin").c_str(), F_OK), 0);
  write_file(p.dir / ".runtime-cache/probe", "x");
  EXPECT_TRUE(read_file(p.dir / ".runtime-cache/probe").empty()) << "the filesystem is not full";

  Ran r = p.recover();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("its worktree was removed first to make room for the seal"), std::string::npos)
      << r.out << r.err;
  EXPECT_FALSE(fs::exists(wt));
  EXPECT_TRUE(wait_gone(script));
  json m = json::parse(read_file(bundle / "manifest.json"));
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["verdict"], "error");
  EXPECT_EQ(m["worktree_kept"], false);
  EXPECT_TRUE(fs::exists(bundle / "reports/incident_pack.json"));
  EXPECT_EQ(p.runs({"verify", before["run_id"]}).exit_code, 0);
  EXPECT_FALSE(fs::exists(p.runs_dir() / ".live" / before["run_id"].get<std::string>()));
}
