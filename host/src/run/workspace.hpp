// The run's workspace: a detached git worktree of the target repo at the baseline, one per run, so runs
// never share a tree and the user's checkout is never touched. Git is driven through its CLI via the
// process service (the same binary the user's repo is used with; hooks disabled for our calls).
#pragma once

#include <atomic>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace cp::run {

struct WorkspaceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One changed path of a run, relative to the worktree.
struct Change {
  std::string status;    // added | modified | deleted | renamed | copied | type_changed | ignored_added
  std::string path;      // the path after the change
  std::string old_path;  // for renamed/copied: the path before
};

struct Collected {
  std::vector<Change> changes;
  std::string patch;  // `git diff --binary` of the worktree against the baseline (ignored files excluded)
};

class Workspace {
 public:
  // The commit baseline_ref names in `repo`. Throws WorkspaceError saying what git answered (not a
  // repository, unknown ref).
  static std::string resolve(const std::filesystem::path& repo, const std::string& baseline_ref);

  // Adds a detached worktree of `commit` (from resolve(), so the run is pinned to what was checked) at
  // `path`. Throws WorkspaceError saying what git answered.
  static Workspace create(const std::filesystem::path& repo, const std::string& commit,
                          const std::filesystem::path& path);

  // An existing worktree made by create() (e.g. found by recovery after a crash).
  static Workspace attach(const std::filesystem::path& repo, const std::filesystem::path& path,
                          std::string commit) {
    Workspace w;
    w.repo_ = repo;
    w.path_ = path;
    w.commit_ = std::move(commit);
    return w;
  }

  // Stages everything in the worktree (its own index, not the user's) and lists every change against the
  // baseline: tracked, untracked, and files git ignores (those are listed too, so no write hides behind
  // .gitignore). Throws WorkspaceError.
  Collected collect() const;

  // Removes the worktree and its registration in the repo. Never throws; returns false on failure.
  bool remove() const;
  static bool remove(const std::filesystem::path& repo, const std::filesystem::path& path);
  // The repository (its .git folder) a worktree folder belongs to, from the worktree's `.git` file;
  // empty when `path` is not a linked worktree.
  static std::filesystem::path owner_git_dir(const std::filesystem::path& path);
  // Drops registrations of worktrees whose folders are gone (`git worktree prune`). Never throws.
  static void prune(const std::filesystem::path& git_dir);

  const std::filesystem::path& repo() const { return repo_; }
  const std::filesystem::path& path() const { return path_; }
  const std::string& baseline_commit() const { return commit_; }

 private:
  std::filesystem::path repo_;
  std::filesystem::path path_;
  std::string commit_;
};

// Runs git in `dir` with hooks and pagers off and a predictable locale; `extra_env` ("K=V") is added to
// the environment. Returns stdout; throws WorkspaceError with git's stderr tail on failure.
std::string run_git(const std::filesystem::path& dir, std::vector<std::string> args, const std::string& what,
                    const std::vector<std::string>& extra_env = {});

// Parses `git diff --name-status -z -M` output.
std::vector<Change> parse_name_status_z(const std::string& out);

}  // namespace cp::run
