// A project root and a git repository for end-to-end runs of the cp-host binary, shared by the run tests.
#pragma once

#include "core/schema_catalog.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>  // environ

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace cp::test {

using nlohmann::json;
namespace fs = std::filesystem;

inline Ran host(std::vector<std::string> args, const fs::path& cwd = {}) {
  std::vector<std::string> argv{CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR};
  argv.insert(argv.end(), args.begin(), args.end());
  return cp::test::run(argv, cwd);
}

inline void expect_valid(const std::string& schema, const json& doc, const std::string& what) {
  auto v = cp::core::schema(schema).validate(doc);
  EXPECT_TRUE(v.empty()) << what << " breaks " << schema << " at "
                         << (v.empty() ? "" : v[0].pointer + ": " + v[0].message) << "\n"
                         << doc.dump(2);
}

// The first line of /proc/<pid>/stat; empty when the process is gone, even mid-read.
inline std::string stat_line(const fs::path& proc) {
  try {
    std::ifstream in(proc / "stat");
    std::string line;
    std::getline(in, line);
    return line;
  } catch (const std::exception&) {
    return "";
  }
}

// True while any process of the group is alive (zombies waiting for init to reap them do not count).
inline bool group_alive(pid_t pgid) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string stat = stat_line(e.path());
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

// True while `pid` exists and is neither a zombie nor dead.
inline bool process_alive(int pid) {
  std::string stat = stat_line("/proc/" + std::to_string(pid));
  if (stat.empty()) return false;
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' &&
         stat[close + 2] != 'X';
}

// Calls fn(/proc/<pid>) for every process that is alive (zombies and dying ones skipped).
template <class Fn>
void for_each_live_process(Fn fn) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string stat = stat_line(e.path());
    size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z' ||
        stat[close + 2] == 'X')
      continue;
    fn(e.path());
  }
}

// The whole of /proc/<pid>/<file> (environ, cmdline: NUL-separated).
// Empty when the process is gone, even mid-read (the read then fails with ESRCH, which libstdc++ throws).
inline std::string proc_file(const fs::path& proc, const char* file) {
  try {
    std::ifstream in(proc / file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  } catch (const std::exception&) {
    return "";
  }
}

// "pid:run_id" for every live process whose environment carries CP_RUN_ID=<one of ids>.
inline std::vector<std::string> processes_of_runs(const std::set<std::string>& ids) {
  std::vector<std::string> found;
  for_each_live_process([&](const fs::path& proc) {
    std::string env = proc_file(proc, "environ");
    auto at = env.find("CP_RUN_ID=");
    if (at == std::string::npos) return;
    std::string id = env.substr(at + 10, env.find('\0', at) - at - 10);
    if (ids.count(id)) found.push_back(proc.filename().string() + ":" + id);
  });
  return found;
}

// The pid file scripts/hang.sh leaves in its run's scratch folder (the sandbox lets a run write nowhere
// else outside its worktree); empty while no run has written one.
inline fs::path hang_pid_file(const fs::path& root) {
  std::error_code ec;
  for (const auto& run : fs::directory_iterator(root / ".runtime-cache/cortexpilot/runs", ec)) {
    fs::path f = run.path() / "artifacts/scratch/hang.pid";
    if (fs::exists(f, ec) && fs::file_size(f, ec) > 0) return f;
  }
  return {};
}

// A project root and a git repo made from the sample project plus a few scenario scripts.
struct RunProject {
  cp::test::TempDir dir;
  fs::path repo;
  fs::path plugins = CP_PLUGIN_DIR;
  RunProject() {
    for (const char* d : {"packs", "policies"})
      fs::copy(fs::path(CP_SOURCE_DIR) / d, dir / d, fs::copy_options::recursive);
    repo = dir / "repo";
    fs::copy(fs::path(CP_SOURCE_DIR) / "examples/sample-repo", repo, fs::copy_options::recursive);
    cp::test::write_file(repo / "scripts/mklink.sh", "ln -s /etc/passwd src/passwd-link\n");
    cp::test::write_file(repo / "scripts/hang.sh",
                         "echo $$ > \"$CP_SCRATCH_DIR/hang.pid\"\nsleep 300 &\nsleep 300 &\nwait\n");
    cp::test::write_file(repo / ".gitignore", "build/\n");
    cp::test::write_file(repo / "scripts/write_ignored.sh", "mkdir -p build && echo x > build/out.txt\n");
    Ran r = cp::test::sh(
        "git init -q -b main && git add -A && git -c user.name=t -c user.email=t@localhost "
        "commit -q -m init",
        repo);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  json contract(std::vector<std::string> commands) const {
    json c =
        json::parse(cp::test::read_file(fs::path(CP_SOURCE_DIR) / "contracts/examples/fix-greeting.json"));
    c["runtime_options"]["commands"] = commands;
    return c;
  }

  struct Result {
    Ran ran;
    json out;
    fs::path bundle;
    json manifest;
    json read(const std::string& rel) const { return json::parse(cp::test::read_file(bundle / rel)); }
    std::vector<json> events() const {
      std::vector<json> ev;
      std::ifstream in(bundle / "events.jsonl");
      std::string line;
      while (std::getline(in, line)) ev.push_back(json::parse(line));
      return ev;
    }
    std::vector<std::string> event_types() const {
      std::vector<std::string> t;
      for (const auto& e : events()) t.push_back(e["type"]);
      return t;
    }
  };

  // Writes the contract as contracts/task.json and returns `cp-host run` on it, ending with --quiet.
  std::vector<std::string> run_argv(const json& contract) const {
    cp::test::write_file(dir / "contracts/task.json", contract.dump(2));
    return {CP_HOST_BIN,
            "--plugins",
            plugins.string(),
            "--root",
            dir.path().string(),
            "run",
            (dir / "contracts/task.json").string(),
            "--repo",
            repo.string(),
            "--quiet"};
  }

  // Runs the contract; `env` adds "K=V" entries (fake agent scenarios, PATH) to cp-host's environment.
  Result run(const json& contract, const std::vector<std::string>& env = {}) const {
    Result r;
    std::vector<std::string> argv = run_argv(contract);
    argv.insert(argv.end() - 1, "--json");
    r.ran = cp::test::run_env(argv, env, dir.path());
    r.out = json::parse(r.ran.out, nullptr, false);
    if (r.out.is_object() && r.out.contains("bundle")) {
      r.bundle = r.out["bundle"].get<std::string>();
      if (r.bundle.is_relative()) r.bundle = dir.path() / r.bundle;
      r.manifest = json::parse(cp::test::read_file(r.bundle / "manifest.json"));
    }
    return r;
  }

  // Writes a file into the repository and commits it (a script the run's commands then name).
  void commit(const std::string& rel, const std::string& text) const {
    cp::test::write_file(repo / rel, text);
    Ran r =
        cp::test::sh("git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m " + rel, repo);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  // Starts `cp-host run` on the contract in the background (stdout to /dev/null); returns its pid.
  pid_t spawn_run(const json& contract) const {
    std::vector<std::string> args = run_argv(contract);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    EXPECT_EQ(posix_spawn(&pid, CP_HOST_BIN, &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
  }

  Ran runs(std::vector<std::string> args) const {
    std::vector<std::string> a{"--root", dir.path().string(), "runs"};
    a.insert(a.end(), args.begin(), args.end());
    return host(a, dir.path());
  }
};

// Every file of a sealed bundle validates against its schema, and the event chain verifies.
inline void expect_bundle_valid(const RunProject& p, const RunProject::Result& r) {
  expect_valid("run_manifest", r.manifest, "manifest.json");
  expect_valid("compiled_contract", r.read("contract.json"), "contract.json");
  expect_valid("task_result", r.read("reports/task_result.json"), "task_result.json");
  for (const auto& e : r.events()) expect_valid("event", e, "event " + e["type"].get<std::string>());
  for (const auto& g : r.manifest["gates"])
    if (g.contains("report")) expect_valid("gate_verdict", r.read(g["report"]), g["report"]);
  if (fs::exists(r.bundle / "reports/proof_pack.json"))
    expect_valid("proof_pack", r.read("reports/proof_pack.json"), "proof_pack");
  if (fs::exists(r.bundle / "reports/incident_pack.json"))
    expect_valid("incident_pack", r.read("reports/incident_pack.json"), "incident_pack");
  Ran v = p.runs({"verify", r.manifest["run_id"]});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(r.manifest["status"], "sealed");
  EXPECT_EQ(r.manifest["events"]["count"], r.events().size());
}

inline json gate_report(const RunProject::Result& r, const std::string& id) {
  return r.read("reports/gate_" + id + ".json");
}

}  // namespace cp::test
