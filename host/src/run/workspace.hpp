// The run's workspace: a detached git worktree of the target repo at the baseline, one per run, so runs
// never share a tree and the user's checkout is never touched. Git is driven through its CLI via the
// process service (the same binary the user's repo is used with; hooks and fsmonitor off for our calls).
//
// The run owns everything inside its worktree, the `.git` file included, so nothing cp-host reads there may
// steer cp-host's own git: collect() never goes through the worktree's `.git` file, its index or its admin
// dir, but through a git dir of its own (see collect()).
#pragma once

#include <atomic>
#include <cstddef>
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

// The largest patch collect() keeps: beyond it there is no patch to judge, and the run is denied.
inline constexpr size_t kMaxPatchBytes = size_t{64} << 20;

struct Collected {
  std::vector<Change> changes;
  std::string patch;  // `git diff --binary` of the worktree against the baseline (ignored files excluded)
  // The patch passed the size limit: `patch` is empty (no part of it is kept), `changes` is complete.
  bool patch_too_large = false;
  // Non-empty when the worktree's `.git` entry is no longer what create() left there: how it changed
  // (rewritten, removed, replaced by a symlink or a folder). Git in the worktree would follow it elsewhere.
  std::string git_file_changed;
  // What the scan before git found (nested repositories, special files, names that are not UTF-8).
  std::string scan_denial;

  // Why the run must be denied whatever its gates say; empty when nothing is wrong.
  std::string denial() const;
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

  // An existing worktree made by create() (e.g. found by recovery after a crash). What create() saw in
  // its `.git` file is not known here, so collect() does not report on it.
  static Workspace attach(const std::filesystem::path& repo, const std::filesystem::path& path,
                          std::string commit) {
    Workspace w;
    w.repo_ = repo;
    w.path_ = path;
    w.commit_ = std::move(commit);
    return w;
  }

  // Lists every change of the worktree against the baseline: tracked, untracked, and files git ignores
  // (those are listed too, so no write hides behind .gitignore), and the patch of all but the ignored
  // ones, up to `max_patch_bytes`.
  //
  // Nothing the run wrote steers it: git runs with a git dir cp-host makes for the call (a temporary folder
  // next to the worktree, removed afterwards) whose index is built from the baseline tree (no
  // skip-worktree or assume-unchanged bit of the run's survives), whose config is empty but for the
  // repository format, and whose objects borrow the user's store read-only through alternates; blobs of
  // the run's files land in that private store. The user's index, config, info/exclude and object store
  // are never written; the worktree's `.git` file is only compared with what create() left. Throws
  // WorkspaceError.
  Collected collect(size_t max_patch_bytes = kMaxPatchBytes) const;

  // Removes the worktree and its registration in the repo. Never throws; returns false on failure.
  bool remove() const;
  static bool remove(const std::filesystem::path& repo, const std::filesystem::path& path);
  // The repository (its .git folder) a worktree folder belongs to, from the worktree's `.git` file;
  // empty when `path` is not a linked worktree, or when the registration that file names does not point
  // back at `path` (the run may have rewritten it).
  static std::filesystem::path owner_git_dir(const std::filesystem::path& path);
  // Drops registrations of worktrees whose folders are gone (`git worktree prune`). Never throws.
  static void prune(const std::filesystem::path& git_dir);

  const std::filesystem::path& repo() const { return repo_; }
  const std::filesystem::path& path() const { return path_; }
  const std::string& baseline_commit() const { return commit_; }
  // The worktree's registration in the repository (<common git dir>/worktrees/<name>), as create() found
  // it; empty after attach().
  const std::filesystem::path& admin_dir() const { return admin_dir_; }

 private:
  std::string git_file_change() const;

  std::filesystem::path repo_;
  std::filesystem::path path_;
  std::string commit_;
  std::string git_file_;  // the bytes of <path>/.git right after `git worktree add`; empty after attach()
  std::filesystem::path admin_dir_;
};

// Runs git in `dir` with hooks, fsmonitor and pagers off; `extra_env` ("K=V") is added to the
// environment. Returns stdout; throws WorkspaceError with git's stderr tail on failure.
std::string run_git(const std::filesystem::path& dir, std::vector<std::string> args, const std::string& what,
                    const std::vector<std::string>& extra_env = {});

// Parses `git diff --name-status -z -M` output.
std::vector<Change> parse_name_status_z(const std::string& out);

}  // namespace cp::run
