// Worktrees of one repository made and removed by many runs at once (serve runs several; separate
// cp-host processes may too). git alone fails now and then under that ("failed to read .../commondir").
#include "run/workspace.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace cp::run {
namespace {

namespace fs = std::filesystem;

// A one-commit repository holding a.txt; `commit` is its HEAD.
void make_repo(const fs::path& repo, std::string& commit) {
  cp::test::write_file(repo / "a.txt", "a\n");
  auto r = cp::test::sh(
      "git init -q && git add -A && git -c user.name=t -c user.email=t@localhost commit -qm init", repo);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  commit = Workspace::resolve(repo, "HEAD");
}

TEST(Workspace, ConcurrentAddAndRemoveOnOneRepoAllSucceed) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  std::atomic<int> failures{0};
  std::vector<std::string> errors(6);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        fs::path wt = d / ("wt/" + std::to_string(t) + "-" + std::to_string(i));
        try {
          Workspace w = Workspace::create(repo, commit, wt);
          if (!fs::exists(wt / "a.txt")) throw std::runtime_error("worktree has no files");
          if (!w.remove()) throw std::runtime_error("not removed");
        } catch (const std::exception& e) {
          ++failures;
          errors[t] = e.what();
        }
      }
    });
  for (auto& th : threads) th.join();
  std::string all;
  for (const auto& e : errors) all += e.empty() ? "" : e + "\n";
  EXPECT_EQ(failures.load(), 0) << all;
  auto list = cp::test::sh("git worktree list --porcelain | grep -c '^worktree'", repo);
  EXPECT_EQ(list.out, "1\n") << "only the main worktree is left";
}

TEST(Workspace, AHalfMadeWorktreeLeftByAKilledAddDoesNotPoisonTheRepo) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  // What `git worktree add` killed midway can leave: the metadata folder, locked, commondir empty.
  Workspace first = Workspace::create(repo, commit, d / "wt/first");
  cp::test::write_file(repo / ".git/worktrees/first/commondir", "");
  cp::test::write_file(repo / ".git/worktrees/first/locked", "initializing");
  auto broken = cp::test::sh("git worktree add --detach -q " + (d / "wt/plain-git").string(), repo);
  ASSERT_NE(broken.exit_code, 0) << "git itself refuses to add worktrees now: " << broken.err;
  Workspace second = Workspace::create(repo, commit, d / "wt/second");
  EXPECT_TRUE(fs::exists(d / "wt/second/a.txt"));
  EXPECT_TRUE(second.remove());
}

}  // namespace
}  // namespace cp::run
