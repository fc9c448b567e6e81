// Worktrees of one repository made and removed by many runs at once (serve runs several; separate
// cp-host processes may too). git alone fails now and then under that ("failed to read .../commondir").
// And collect(): whatever a run leaves in its worktree (its .git file, index flags, a git dir of its own,
// huge files), cp-host's git neither follows it nor writes into the user's repository.
#include "run/workspace.hpp"
#include "unit/git_dir_state.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <functional>
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

bool has_change(const Collected& c, const std::string& status, const std::string& path) {
  for (const auto& ch : c.changes)
    if (ch.status == status && ch.path == path) return true;
  return false;
}

std::string listing(const Collected& c) {
  std::string s;
  for (const auto& ch : c.changes) s += ch.status + " " + ch.path + "\n";
  return s;
}

TEST(WorkspaceCollect, AFileHiddenBySkipWorktreeIsStillSeenChanged) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  Workspace w = Workspace::create(repo, commit, d / "wt/run");
  fs::path wt = w.path();
  ASSERT_EQ(cp::test::sh("git update-index --skip-worktree a.txt", wt).exit_code, 0);
  cp::test::write_file(wt / "a.txt", "rewritten\n");
  ASSERT_EQ(cp::test::sh("git status --porcelain", wt).out, "") << "the worktree's own git no longer sees it";
  Collected c = w.collect();
  EXPECT_TRUE(has_change(c, "modified", "a.txt")) << listing(c);
  EXPECT_NE(c.patch.find("+rewritten"), std::string::npos) << c.patch;
  EXPECT_EQ(c.denial(), "");
  EXPECT_TRUE(w.remove());
}

TEST(WorkspaceCollect, NothingIsWrittenIntoTheUsersRepositoryAndNoPrivateGitDirIsLeft) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  Workspace w = Workspace::create(repo, commit, d / "wt/run");
  auto before = cp::test::git_dir_state(repo / ".git");
  cp::test::write_file(w.path() / "a.txt", "changed\n");
  cp::test::write_file(w.path() / "new.bin", std::string(3 << 20, 'x') + "tail");
  Collected c = w.collect();
  EXPECT_TRUE(has_change(c, "modified", "a.txt")) << listing(c);
  EXPECT_TRUE(has_change(c, "added", "new.bin")) << listing(c);
  auto after = cp::test::git_dir_state(repo / ".git");
  EXPECT_TRUE(before == after) << "before: " << before.describe() << "\nafter: " << after.describe();
  for (const auto& e : fs::directory_iterator(d / "wt"))
    EXPECT_EQ(e.path().filename().string().rfind(".cp-collect-", 0), std::string::npos) << e.path();
  EXPECT_TRUE(w.remove());
}

TEST(WorkspaceCollect, ATamperedDotGitIsReportedAndNeitherFollowedNorTrusted) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  fs::path canary = d / "canary";
  // A git dir the run made, whose config would run a command inside any git that follows the .git file.
  auto make_hostile_git_dir = [&](const fs::path& at) {
    auto r = cp::test::sh("git init -q " + (d / "hostile").string() + " && git -C " +
                              (d / "hostile").string() + " config core.fsmonitor 'touch " + canary.string() +
                              "' && mv " + (d / "hostile/.git").string() + " " + at.string() + " && rmdir " +
                              (d / "hostile").string(),
                          d.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  struct Case {
    std::string name;
    std::function<void(const fs::path& wt)> tamper;
    std::string expect;
  };
  std::vector<Case> cases{
      {"pointed at the user's git dir",
       [&](const fs::path& wt) {
         cp::test::write_file(wt / ".git", "gitdir: " + (repo / ".git").string() + "\n");
       },
       "rewrote"},
      {"pointed at a git dir the run made",
       [&](const fs::path& wt) {
         make_hostile_git_dir(wt / "evil");
         cp::test::write_file(wt / ".git", "gitdir: " + (wt / "evil").string() + "\n");
       },
       "rewrote"},
      {"removed", [&](const fs::path& wt) { fs::remove(wt / ".git"); }, "removed"},
      {"a symlink",
       [&](const fs::path& wt) {
         fs::remove(wt / ".git");
         fs::create_directory_symlink(repo / ".git", wt / ".git");
       },
       "symlink"},
      {"a folder",
       [&](const fs::path& wt) {
         fs::remove(wt / ".git");
         make_hostile_git_dir(wt / ".git");
       },
       "folder"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    Workspace w = Workspace::create(repo, commit, d / "wt/run");
    auto before = cp::test::git_dir_state(repo / ".git");
    cp::test::write_file(w.path() / "a.txt", "changed\n");
    cp::test::write_file(w.path() / "b.txt", "new\n");
    k.tamper(w.path());
    Collected c = w.collect();
    EXPECT_NE(c.git_file_changed.find(k.expect), std::string::npos) << c.git_file_changed;
    EXPECT_NE(c.denial().find(".git"), std::string::npos) << c.denial();
    // The change list is the real one: the two files, and nothing of .git itself.
    EXPECT_TRUE(has_change(c, "modified", "a.txt")) << listing(c);
    EXPECT_TRUE(has_change(c, "added", "b.txt")) << listing(c);
    for (const auto& ch : c.changes)
      EXPECT_TRUE(ch.path != ".git" && ch.path.rfind(".git/", 0) != 0) << ch.path;
    EXPECT_FALSE(fs::exists(canary)) << "a command from the run's git config ran";
    auto after = cp::test::git_dir_state(repo / ".git");
    EXPECT_TRUE(before == after) << "before: " << before.describe() << "\nafter: " << after.describe();
    EXPECT_EQ(cp::test::sh("git status --porcelain", repo).out, "") << "the user's index took the change";
    EXPECT_TRUE(w.remove());
    EXPECT_FALSE(fs::exists(w.path()));
  }
  EXPECT_EQ(cp::test::sh("git worktree list --porcelain | grep -c '^worktree'", repo).out, "1\n");
}

TEST(WorkspaceCollect, NoFsmonitorOfTheRepositoryOrOfTheWorktreeRuns) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  fs::path canary = d / "canary";
  ASSERT_EQ(cp::test::sh("git config core.fsmonitor 'touch " + canary.string() + "'", repo).exit_code, 0);
  cp::test::sh("git status --porcelain", repo);
  ASSERT_TRUE(fs::exists(canary)) << "the planted fsmonitor runs for a plain git";
  fs::remove(canary);
  // Per-worktree config: what git in the worktree reads from its admin dir.
  ASSERT_EQ(
      cp::test::sh("git config core.repositoryformatversion 1 && git config extensions.worktreeConfig true",
                   repo)
          .exit_code,
      0);
  Workspace w = Workspace::create(repo, commit, d / "wt/run");
  ASSERT_FALSE(w.admin_dir().empty());
  cp::test::write_file(w.admin_dir() / "config.worktree",
                       "[core]\n\tfsmonitor = touch " + canary.string() + "-worktree\n");
  cp::test::write_file(w.path() / "a.txt", "changed\n");
  Collected c = w.collect();
  EXPECT_TRUE(has_change(c, "modified", "a.txt")) << listing(c);
  EXPECT_TRUE(w.remove());
  EXPECT_FALSE(fs::exists(canary)) << "the repository's fsmonitor ran inside cp-host's git";
  EXPECT_FALSE(fs::exists(canary.string() + "-worktree"))
      << "the worktree's fsmonitor ran inside cp-host's git";
}

TEST(WorkspaceCollect, APatchOverTheLimitIsNotKeptButEveryChangeIsListed) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  Workspace w = Workspace::create(repo, commit, d / "wt/run");
  cp::test::write_file(w.path() / "a.txt", "changed\n");
  std::string big;
  for (int i = 0; i < 4000; ++i) big += "line " + std::to_string(i) + "\n";
  cp::test::write_file(w.path() / "big.txt", big);
  Collected c = w.collect(8 * 1024);
  EXPECT_TRUE(c.patch_too_large);
  EXPECT_EQ(c.patch, "");
  EXPECT_TRUE(has_change(c, "modified", "a.txt")) << listing(c);
  EXPECT_TRUE(has_change(c, "added", "big.txt")) << listing(c);
  EXPECT_NE(c.denial().find("too large"), std::string::npos) << c.denial();
  Collected whole = w.collect();
  EXPECT_FALSE(whole.patch_too_large);
  EXPECT_NE(whole.patch.find("+line 3999"), std::string::npos);
  EXPECT_TRUE(w.remove());
}

TEST(WorkspaceCollect, OwnerGitDirIsOnlyTheRegistrationThatPointsBack) {
  cp::test::TempDir d;
  fs::path repo = d / "repo";
  std::string commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(repo, commit));
  Workspace w = Workspace::create(repo, commit, d / "wt/run");
  EXPECT_EQ(fs::weakly_canonical(Workspace::owner_git_dir(w.path())), fs::weakly_canonical(repo / ".git"));
  // A registration the run made inside its worktree, pointing back at it: still not an owner.
  fs::path fake = w.path() / "fake/worktrees/run";
  cp::test::write_file(fake / "gitdir", (w.path() / ".git").string() + "\n");
  cp::test::write_file(w.path() / ".git", "gitdir: " + fake.string() + "\n");
  EXPECT_EQ(Workspace::owner_git_dir(w.path()), fs::path());
  // Another repository's registration that does not point back here: not an owner either.
  fs::path other = d / "other";
  std::string other_commit;
  ASSERT_NO_FATAL_FAILURE(make_repo(other, other_commit));
  Workspace ow = Workspace::create(other, other_commit, d / "wt/other-run");
  cp::test::write_file(w.path() / ".git", "gitdir: " + ow.admin_dir().string() + "\n");
  EXPECT_EQ(Workspace::owner_git_dir(w.path()), fs::path());
  EXPECT_TRUE(ow.remove());
  // A FIFO where the registration's gitdir file would be: answered at once (no owner), never waited on.
  fs::path fifo_dir = w.path() / "q/worktrees/x";
  fs::create_directories(fifo_dir);
  ASSERT_EQ(::mkfifo((fifo_dir / "gitdir").c_str(), 0600), 0);
  cp::test::write_file(w.path() / ".git", "gitdir: " + fifo_dir.string() + "\n");
  EXPECT_EQ(Workspace::owner_git_dir(w.path()), fs::path());
  EXPECT_TRUE(w.remove());
}

}  // namespace
}  // namespace cp::run
