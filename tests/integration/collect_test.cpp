// What a run leaves in its worktree never steers cp-host's own git: `cp-host run` end to end, with runs
// that redirect the worktree's .git file, a repository whose git config would run a command, an index flag
// that hides a rewritten file, and files far larger than a patch may be. Each test checks that the harm did
// not happen (the user's .git is as it was, no canary file), not only the verdict.
//
// The run's processes are sandboxed (they may write inside their worktree only), so what a run could no
// longer do itself is done by the test: it plants config in the user's repository before the run, or sets
// an index flag in the worktree while the run's script waits for it.
#include "integration/run_project.hpp"
#include "unit/git_dir_state.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <thread>

using cp::test::Ran;
using nlohmann::json;
namespace fs = std::filesystem;

using namespace cp::test;

namespace {

// Adds scripts/<name> to the test repository, committed, so a run's worktree has them.
void add_scripts(const RunProject& p, const std::map<std::string, std::string>& scripts) {
  for (const auto& [name, body] : scripts) cp::test::write_file(p.repo / "scripts" / name, body);
  Ran r =
      cp::test::sh("git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m scripts", p.repo);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

bool has_change(const json& changes, const std::string& status, const std::string& path) {
  for (const auto& c : changes)
    if (c.value("status", "") == status && c.value("path", "") == path) return true;
  return false;
}

fs::path worktrees_of(const RunProject& p) {
  return p.dir / ".runtime-cache/cortexpilot/worktrees";
}

// Nothing of a private git dir is left next to the worktrees.
void expect_no_collect_leftovers(const RunProject& p) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(worktrees_of(p), ec))
    EXPECT_NE(e.path().filename().string().rfind(".cp-collect-", 0), 0u) << e.path();
}

void expect_unchanged(const GitDirState& before, const RunProject& p) {
  GitDirState after = git_dir_state(p.repo / ".git");
  EXPECT_TRUE(before == after) << "the user's .git changed: before " << before.describe() << ", after "
                               << after.describe() << (before.index == after.index ? "" : " (index bytes)")
                               << (before.index_mtime == after.index_mtime ? "" : " (index mtime)")
                               << (before.config == after.config ? "" : " (config)")
                               << (before.newest_object == after.newest_object ? "" : " (an object's mtime)");
}

}  // namespace

TEST(Collect, ARunPointingItsDotGitAtTheUsersGitDirIsDeniedAndTheUsersIndexIsUntouched) {
  RunProject p;
  // The worktree's .git says gitdir: <repo>/.git/worktrees/<id>; cut that to <repo>/.git, whose index is
  // the user's. A collect that followed it would stage the run's change there.
  ASSERT_NO_FATAL_FAILURE(add_scripts(
      p,
      {{"to_user_index.sh", "sed -i s/Helo/Hello/ src/greeting.sh\nsed -i 's|/worktrees/[^/]*$||' .git\n"}}));
  GitDirState before = git_dir_state(p.repo / ".git");
  auto r = p.run(p.contract({"sh scripts/to_user_index.sh"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "denied");
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("rewrote the worktree's .git file"),
            std::string::npos)
      << r.manifest["reason"];
  // The change list is the real one, without .git.
  EXPECT_EQ(r.read("artifacts/changed_files.json"),
            json::parse(R"([{"path":"src/greeting.sh","status":"modified"}])"));
  EXPECT_NE(cp::test::read_file(r.bundle / "artifacts/diff.patch").find("+echo \"Hello, world\""),
            std::string::npos);
  expect_unchanged(before, p);
  EXPECT_EQ(cp::test::sh("git diff --cached --name-only", p.repo).out, "")
      << "the user's index holds a change";
  // The worktree and its registration are gone all the same.
  EXPECT_FALSE(fs::exists(r.manifest["worktree"].get<std::string>()));
  EXPECT_EQ(cp::test::sh("git worktree list --porcelain | grep -c '^worktree'", p.repo).out, "1\n");
  expect_no_collect_leftovers(p);
  expect_bundle_valid(p, r);
}

TEST(Collect, ARunPointingItsDotGitAtAGitDirItMadeIsDeniedAndItsConfigNeverRuns) {
  RunProject p;
  fs::path canary = p.dir / "canary-run-git-dir";
  // A git dir of the run's own, inside its worktree, whose config runs a command in any git that uses it.
  ASSERT_NO_FATAL_FAILURE(
      add_scripts(p, {{"own_git_dir.sh",
                       "sed -i s/Helo/Hello/ src/greeting.sh\n"
                       "mkdir -p .evil/objects .evil/refs\n"
                       "echo 'ref: refs/heads/main' > .evil/HEAD\n"
                       "printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = touch " +
                           canary.string() +
                           "\\n' > .evil/config\n"
                           "printf 'gitdir: %s/.evil\\n' \"$PWD\" > .git\n"}}));
  GitDirState before = git_dir_state(p.repo / ".git");
  auto r = p.run(p.contract({"sh scripts/own_git_dir.sh"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "denied");
  EXPECT_NE(r.manifest["reason"].get<std::string>().find(".git file"), std::string::npos)
      << r.manifest["reason"];
  EXPECT_FALSE(fs::exists(canary)) << "cp-host's git ran a command from the run's git config";
  json changes = r.read("artifacts/changed_files.json");
  EXPECT_TRUE(has_change(changes, "modified", "src/greeting.sh")) << changes.dump();
  EXPECT_TRUE(has_change(changes, "added", ".evil/config")) << changes.dump();
  for (const auto& c : changes) EXPECT_NE(c["path"], ".git");
  expect_unchanged(before, p);
  EXPECT_EQ(cp::test::sh("git status --porcelain", p.repo).out, "");
  expect_no_collect_leftovers(p);
}

TEST(Collect, AnFsmonitorInTheRepositorysConfigNeverRunsInsideCpHost) {
  RunProject p;
  fs::path canary = p.dir / "canary-fsmonitor";
  ASSERT_EQ(cp::test::sh("git config core.fsmonitor 'touch " + canary.string() + "'", p.repo).exit_code, 0);
  cp::test::sh("git status --porcelain", p.repo);
  ASSERT_TRUE(fs::exists(canary)) << "the planted fsmonitor runs for a plain git in the repository";
  fs::remove(canary);
  GitDirState before = git_dir_state(p.repo / ".git");
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  EXPECT_EQ(r.ran.exit_code, 0) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "success");
  EXPECT_EQ(r.read("artifacts/changed_files.json"),
            json::parse(R"([{"path":"src/greeting.sh","status":"modified"}])"));
  // Not while the worktree was made, nor at collect, nor when it was removed.
  EXPECT_FALSE(fs::exists(canary)) << "cp-host's git ran the repository's fsmonitor";
  expect_unchanged(before, p);
}

TEST(Collect, AFileHiddenBySkipWorktreeIsStillJudgedByDiffScope) {
  RunProject p;
  // The run rewrites README.md (outside allowed_paths) and waits; the test then sets skip-worktree on it in
  // the worktree's own index, which hides it from any git that uses that index.
  ASSERT_NO_FATAL_FAILURE(
      add_scripts(p, {{"rewrite_and_wait.sh",
                       "sed -i s/Helo/Hello/ src/greeting.sh\n"
                       "echo 'rewritten by the run' >> README.md\n"
                       "touch .ready\n"
                       "n=0\n"
                       "while [ ! -f .go ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done\n"
                       "rm -f .ready .go\n"}}));
  RunProject::Result r;
  std::thread run([&] { r = p.run(p.contract({"sh scripts/rewrite_and_wait.sh"})); });
  fs::path wt;
  for (int i = 0; i < 1200 && wt.empty(); ++i) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(worktrees_of(p), ec))
      if (fs::exists(e.path() / ".ready")) wt = e.path();
    if (wt.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (wt.empty()) {
    run.join();
    FAIL() << "the run never reached its wait: " << r.ran.out << r.ran.err;
  }
  Ran flag = cp::test::sh("git update-index --skip-worktree README.md && git ls-files -v README.md", wt);
  EXPECT_EQ(flag.out, "S README.md\n") << flag.err;
  Ran hidden = cp::test::sh("git status --porcelain --untracked-files=no", wt);
  EXPECT_EQ(hidden.out.find("README.md"), std::string::npos) << "the worktree's own git should not see it";
  cp::test::write_file(wt / ".go", "");
  run.join();
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "denied");
  EXPECT_TRUE(has_change(r.read("artifacts/changed_files.json"), "modified", "README.md"))
      << r.read("artifacts/changed_files.json").dump();
  json rep = gate_report(r, "diff_scope");
  EXPECT_EQ(rep["verdict"], "fail");
  ASSERT_FALSE(rep["diagnostics"].empty()) << rep.dump();
  EXPECT_EQ(rep["diagnostics"][0]["path"], "README.md");
  EXPECT_NE(cp::test::read_file(r.bundle / "artifacts/diff.patch").find("+rewritten by the run"),
            std::string::npos);
}

TEST(Collect, AFiftyMegabyteFileLeavesTheUsersGitAsItWas) {
  RunProject p;
  ASSERT_NO_FATAL_FAILURE(add_scripts(
      p,
      {{"big.sh", "sed -i s/Helo/Hello/ src/greeting.sh\nhead -c 50000000 /dev/urandom > src/big.bin\n"}}));
  GitDirState before = git_dir_state(p.repo / ".git");
  auto r = p.run(p.contract({"sh scripts/big.sh"}));
  EXPECT_EQ(r.ran.exit_code, 0) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "success") << r.manifest["reason"];
  EXPECT_TRUE(has_change(r.read("artifacts/changed_files.json"), "added", "src/big.bin"));
  // The whole change is in the bundle (a binary patch of the 50 MB), none of it in the user's objects.
  EXPECT_GT(fs::file_size(r.bundle / "artifacts/diff.patch"), 50'000'000u);
  expect_unchanged(before, p);
  expect_no_collect_leftovers(p);
}

TEST(Collect, APatchOverTheLimitIsDeniedUnbuiltAndTheChangeListIsStillMade) {
  RunProject p;
  ASSERT_NO_FATAL_FAILURE(add_scripts(
      p,
      {{"huge.sh", "sed -i s/Helo/Hello/ src/greeting.sh\nhead -c 70000000 /dev/urandom > src/huge.bin\n"}}));
  GitDirState before = git_dir_state(p.repo / ".git");
  auto r = p.run(p.contract({"sh scripts/huge.sh"}));
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "denied");
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("too large"), std::string::npos)
      << r.manifest["reason"];
  json changes = r.read("artifacts/changed_files.json");
  EXPECT_TRUE(has_change(changes, "added", "src/huge.bin")) << changes.dump();
  EXPECT_TRUE(has_change(changes, "modified", "src/greeting.sh")) << changes.dump();
  EXPECT_EQ(fs::file_size(r.bundle / "artifacts/diff.patch"), 0u);
  expect_unchanged(before, p);
  expect_no_collect_leftovers(p);
  expect_bundle_valid(p, r);
}
