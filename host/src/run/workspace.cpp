#include "run/workspace.hpp"

#include "os/process.hpp"
#include "run/worktree_scan.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>

namespace cp::run {

namespace fs = std::filesystem;

namespace {

// Config every git call of cp-host carries, ahead of any config file: no hooks, no fsmonitor (a hook
// command or a daemon), paths as they are.
void add_safe_config(std::vector<std::string>& argv) {
  for (const char* kv : {"core.hooksPath=/dev/null", "core.fsmonitor=false", "core.quotepath=off"}) {
    argv.emplace_back("-c");
    argv.emplace_back(kv);
  }
}

// cp-host's environment without git's own variables (GIT_DIR, GIT_INDEX_FILE, GIT_CONFIG_PARAMETERS...
// set by whoever started cp-host would redirect every call) and without the names in `drop`, then `add`.
std::vector<std::string> git_env(const std::vector<std::string>& drop, const std::vector<std::string>& add) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    std::string_view name = kv.substr(0, kv.find('='));
    bool dropped = name.substr(0, 4) == "GIT_";
    for (const auto& d : drop) dropped = dropped || name == d;
    if (!dropped) env.emplace_back(kv);
  }
  env.insert(env.end(), add.begin(), add.end());
  return env;
}

struct GitOutput {
  std::string out;
  bool cut = false;  // stdout passed the limit: the call was stopped and `out` is empty
};

// Runs `argv` (a git command line) and returns its stdout; `limit` (0: none) stops the call once stdout
// passes it. Throws WorkspaceError naming the subcommand `sub` with git's stderr tail on failure.
GitOutput exec_git(std::vector<std::string> argv, std::optional<std::vector<std::string>> env,
                   const std::string& sub, const std::string& what, size_t limit = 0) {
  os::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = std::move(env);
  spec.timeout = std::chrono::minutes(10);
  GitOutput res;
  std::atomic<bool> stop{false};
  spec.stop = &stop;
  spec.on_stdout = [&res, &stop, limit](std::string_view chunk) {
    if (limit > 0 && res.out.size() + chunk.size() > limit) {
      res.cut = true;
      std::string().swap(res.out);
      stop = true;  // no point in letting git produce the rest
      return false;
    }
    res.out.append(chunk);
    return true;
  };
  spec.tail_bytes = 2048;
  os::ProcessOutcome r = os::run_process(spec);
  if (res.cut) return res;
  if (!r.ok()) {
    std::string err = r.stderr_tail;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw WorkspaceError(what + ": git " + sub + " " + r.describe() + (err.empty() ? "" : ": " + err));
  }
  return res;
}

// git in the user's repository (create, remove, prune, resolve): its own config, but neither the system's
// nor the user's global config or attributes, so that the checkout create() makes is read back by
// collect() under the same rules.
std::string repo_git(const fs::path& dir, std::vector<std::string> args, const std::string& what) {
  std::vector<std::string> argv{"git"};
  add_safe_config(argv);
  argv.insert(argv.end(), {"-C", dir.string()});
  std::string sub = args.front();
  argv.insert(argv.end(), args.begin(), args.end());
  return exec_git(std::move(argv),
                  git_env({"XDG_CONFIG_HOME"}, {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                                                "GIT_ATTR_NOSYSTEM=1", "XDG_CONFIG_HOME=/dev/null"}),
                  sub, what)
      .out;
}

}  // namespace

std::string run_git(const fs::path& dir, std::vector<std::string> args, const std::string& what,
                    const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv{"git"};
  add_safe_config(argv);
  argv.insert(argv.end(), {"-C", dir.string()});
  std::string sub = args.front();
  argv.insert(argv.end(), args.begin(), args.end());
  std::optional<std::vector<std::string>> env;
  if (!extra_env.empty()) {
    env.emplace();
    for (char** e = environ; e && *e; ++e) env->emplace_back(*e);
    env->insert(env->end(), extra_env.begin(), extra_env.end());
  }
  return exec_git(std::move(argv), std::move(env), sub, what).out;
}

namespace {

std::string git(const fs::path& dir, std::vector<std::string> args, const std::string& what) {
  return repo_git(dir, std::move(args), what);
}

// git is not safe when two processes add or remove worktrees of one repository at once (one reads
// .git/worktrees/<other>/ while the other is making it: "failed to read .../commondir"). Every cp-host
// process serialises those calls on an flock of the repository folder itself: the lock follows the inode,
// whatever path names the repo, and nothing is written into the user's repository for it.
class RepoLock {
 public:
  explicit RepoLock(const fs::path& repo) : fd_(::open(repo.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_ >= 0)
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
  }
  ~RepoLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

 private:
  int fd_;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string status_name(char c) {
  switch (c) {
    case 'A':
      return "added";
    case 'M':
      return "modified";
    case 'D':
      return "deleted";
    case 'R':
      return "renamed";
    case 'C':
      return "copied";
    case 'T':
      return "type_changed";
    default:
      return "modified";
  }
}

}  // namespace

std::vector<Change> parse_name_status_z(const std::string& out) {
  std::vector<std::string> fields;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t z = out.find('\0', pos);
    if (z == std::string::npos) z = out.size();
    fields.push_back(out.substr(pos, z - pos));
    pos = z + 1;
  }
  std::vector<Change> changes;
  for (size_t i = 0; i < fields.size();) {
    const std::string& st = fields[i];
    if (st.empty()) {
      ++i;
      continue;
    }
    Change c;
    c.status = status_name(st[0]);
    if ((st[0] == 'R' || st[0] == 'C') && i + 2 < fields.size()) {
      c.old_path = fields[i + 1];
      c.path = fields[i + 2];
      i += 3;
    } else if (i + 1 < fields.size()) {
      c.path = fields[i + 1];
      i += 2;
    } else {
      break;
    }
    changes.push_back(std::move(c));
  }
  return changes;
}

std::string Workspace::resolve(const fs::path& repo, const std::string& baseline_ref) {
  if (!fs::is_directory(repo)) throw WorkspaceError("repository folder " + repo.string() + " does not exist");
  if (baseline_ref.empty() || baseline_ref[0] == '-')
    throw WorkspaceError("baseline_ref '" + baseline_ref + "' is not a git ref");
  fs::path abs = fs::absolute(repo).lexically_normal();
  return trim(git(abs, {"rev-parse", "--verify", "--quiet", "--end-of-options", baseline_ref + "^{commit}"},
                  "cannot resolve rollback.baseline_ref '" + baseline_ref + "' in " + abs.string()));
}

namespace {

// A `git worktree add` killed midway (a run killed with its host) can leave .git/worktrees/<id>/commondir
// empty, and from then on every `git worktree add` in that repository fails ("failed to read
// .git/worktrees/<id>/commondir: Success"). Such half-made entries of our own worktrees (their gitdir points
// into `ours`, or was never written) are removed before each add. Called under the RepoLock.
void heal_half_made_worktrees(const fs::path& repo, const fs::path& ours) {
  fs::path meta = repo / ".git" / "worktrees";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(meta, ec)) {
    auto size = fs::file_size(e.path() / "commondir", ec);
    if (!ec && size > 0) continue;
    ec.clear();
    std::ifstream in(e.path() / "gitdir");
    std::string gitdir;
    std::getline(in, gitdir);
    bool mine = gitdir.empty() || fs::path(gitdir).lexically_normal().string().rfind(ours.string(), 0) == 0;
    if (mine) fs::remove_all(e.path(), ec);
  }
}

}  // namespace

namespace {

// The whole of a small regular file, not following a symlink; nullopt when it cannot be read.
std::optional<std::string> read_small_file(const fs::path& p, size_t max) {
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  ssize_t n;
  while (out.size() <= max && (n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (n < 0) return std::nullopt;
  return out;
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw WorkspaceError("cannot write " + p.string());
}

// The git dir collect() works through: made by cp-host next to the worktree (out of the run's reach),
// removed when done. Its config holds the repository format alone; its objects borrow the user's store
// read-only (alternates), so what `git add` writes stays here; its index is its own.
class PrivateGitDir {
 public:
  PrivateGitDir(const fs::path& repo, const fs::path& worktree, const std::string& commit)
      : wt_(fs::absolute(worktree).lexically_normal()) {
    // Where the user's objects are is asked of the user's repository, never of the worktree.
    std::string info =
        repo_git(repo, {"rev-parse", "--path-format=absolute", "--git-common-dir", "--show-object-format"},
                 "cannot find the git dir of " + repo.string());
    // Two lines: the common git dir (absolute) and the object format.
    size_t nl = info.find('\n');
    fs::path common = info.substr(0, nl);
    std::string format = nl == std::string::npos ? "" : trim(info.substr(nl + 1));
    if (common.empty() || common.is_relative() || std::count(info.begin(), info.end(), '\n') != 2)
      throw WorkspaceError("cannot find the git dir of " + repo.string() + ": git answered '" + trim(info) +
                           "'");
    // A leftover of a collect cut short by a crash is dropped first (one collect per worktree at a time).
    std::string prefix = ".cp-collect-" + wt_.filename().string() + "-";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(wt_.parent_path(), ec))
      if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove_all(e.path(), ec);
    std::string templ = (wt_.parent_path() / (prefix + "XXXXXX")).string();
    if (!::mkdtemp(templ.data()))
      throw WorkspaceError("cannot make a private git dir next to " + wt_.string() + ": " +
                           std::strerror(errno));
    dir_.path = templ;
    const fs::path& d = dir_.path;
    fs::create_directories(d / "objects" / "info");
    fs::create_directories(d / "refs");
    fs::create_directories(d / "home");
    bool sha256 = format == "sha256";
    write_file(d / "config", std::string("[core]\n\trepositoryformatversion = ") + (sha256 ? "1" : "0") +
                                 "\n\tbare = false\n" +
                                 (sha256 ? "[extensions]\n\tobjectformat = sha256\n" : ""));
    write_file(d / "HEAD", commit + "\n");
    write_file(d / "objects" / "info" / "alternates", (common / "objects").string() + "\n");
    std::string home = (d / "home").string();
    env_ = git_env(
        {"HOME", "XDG_CONFIG_HOME"},
        {"HOME=" + home, "XDG_CONFIG_HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
         "GIT_ATTR_NOSYSTEM=1", "GIT_OPTIONAL_LOCKS=0", "GIT_INDEX_FILE=" + (d / "index").string()});
  }

  GitOutput git(std::vector<std::string> args, const std::string& what, size_t limit = 0) const {
    std::vector<std::string> argv{"git"};
    add_safe_config(argv);
    argv.insert(argv.end(), {"-c", "core.untrackedCache=false", "-C", wt_.string(),
                             "--git-dir=" + dir_.path.string(), "--work-tree=" + wt_.string()});
    std::string sub = args.front();
    argv.insert(argv.end(), args.begin(), args.end());
    return exec_git(std::move(argv), env_, sub, what, limit);
  }

 private:
  // Removed with everything in it however the object ends, a throwing constructor included.
  struct Owned {
    fs::path path;
    Owned() = default;
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() {
      std::error_code ec;
      if (!path.empty()) fs::remove_all(path, ec);
    }
  };

  fs::path wt_;
  Owned dir_;
  std::vector<std::string> env_;
};

}  // namespace

Workspace Workspace::create(const fs::path& repo, const std::string& commit, const fs::path& path) {
  Workspace w;
  w.commit_ = commit;
  w.repo_ = fs::absolute(repo).lexically_normal();
  w.path_ = fs::absolute(path).lexically_normal();
  fs::create_directories(w.path_.parent_path());
  RepoLock lock(w.repo_);
  heal_half_made_worktrees(w.repo_, w.path_.parent_path());
  git(w.repo_, {"worktree", "add", "--detach", "--quiet", w.path_.string(), w.commit_},
      "cannot create the run worktree at " + w.path_.string());
  // What git wrote there, before anything of the run has run: collect() holds the run to it.
  fs::path dot_git = w.path_ / ".git";
  std::error_code ec;
  auto file = fs::is_regular_file(fs::symlink_status(dot_git, ec)) ? read_small_file(dot_git, 64 * 1024)
                                                                   : std::nullopt;
  if (!file || file->rfind("gitdir: ", 0) != 0)
    throw WorkspaceError("the new worktree at " + w.path_.string() + " has no .git file naming its git dir");
  w.git_file_ = *file;
  w.admin_dir_ = trim(file->substr(8));
  return w;
}

std::string Workspace::git_file_change() const {
  if (git_file_.empty()) return {};
  fs::path dot_git = path_ / ".git";
  struct stat st {};
  if (::lstat(dot_git.c_str(), &st) != 0) return "removed the worktree's .git file";
  if (S_ISLNK(st.st_mode)) return "replaced the worktree's .git file by a symlink";
  if (S_ISDIR(st.st_mode)) return "replaced the worktree's .git file by a folder";
  if (!S_ISREG(st.st_mode)) return "replaced the worktree's .git file by something that is not a file";
  if (static_cast<size_t>(st.st_size) != git_file_.size() ||
      read_small_file(dot_git, git_file_.size()) != git_file_)
    return "rewrote the worktree's .git file";
  return {};
}

std::string Collected::denial() const {
  std::string why = scan_denial;
  if (!git_file_changed.empty())
    why += (why.empty() ? "" : "; ") + std::string("the run ") + git_file_changed +
           " (git in the worktree would no longer use the run's registration)";
  if (patch_too_large)
    why += (why.empty() ? "" : "; ") + std::string("the change is too large to judge: its patch passes ") +
           std::to_string(kMaxPatchBytes >> 20) + " MiB (artifacts/diff.patch is left empty)";
  return why;
}

Collected Workspace::collect(size_t max_patch_bytes) const {
  Collected c;
  c.git_file_changed = git_file_change();
  // Before any git reads the tree: special files go (git would block on a FIFO), nested repositories are
  // left out of what git walks (it would read their HEAD and make them gitlinks) and reported.
  WorktreeScan scan = scan_worktree(path_);
  c.scan_denial = scan.denial();
  std::vector<std::string> paths{"."};
  for (const auto& nested : scan.nested_repos) paths.push_back(":(exclude,literal)" + nested);
  PrivateGitDir g(repo_, path_, commit_);
  // The index is the baseline tree: no flag of the run's (skip-worktree, assume-unchanged) is in it.
  g.git({"read-tree", commit_}, "cannot read the baseline tree");
  // Unchanged files get their stat data by comparing contents (nothing written), so that `add` below hashes
  // and stores only what the run changed, in the private store.
  g.git({"update-index", "-q", "--refresh"}, "cannot refresh the index");
  std::vector<std::string> add{"add", "--all", "--"};
  add.insert(add.end(), paths.begin(), paths.end());
  g.git(add, "cannot stage the worktree");
  c.changes = parse_name_status_z(g.git({"diff", "--cached", "--no-ext-diff", "--no-textconv",
                                         "--name-status", "-z", "-M", commit_, "--"},
                                        "cannot list changes")
                                      .out);
  GitOutput patch = g.git({"diff", "--cached", "--no-ext-diff", "--no-textconv", "--binary", commit_, "--"},
                          "cannot produce the diff", max_patch_bytes);
  // Paths go into JSON (the changes list, events): bytes that are not UTF-8 are written as \xNN.
  for (auto& ch : c.changes) {
    ch.path = as_utf8(ch.path);
    ch.old_path = as_utf8(ch.old_path);
  }
  c.patch_too_large = patch.cut;
  c.patch = std::move(patch.out);
  // Ignored files: written by the run but invisible to `git add`. List them so the gates judge them too.
  // Submodules are not looked into: that would run git inside a repository the run may have made.
  std::vector<std::string> status{"status",
                                  "--porcelain=v1",
                                  "-z",
                                  "--ignored=traditional",
                                  "--untracked-files=all",
                                  "--ignore-submodules=all",
                                  "--"};
  status.insert(status.end(), paths.begin(), paths.end());
  std::string ignored = g.git(status, "cannot list ignored files").out;
  size_t pos = 0;
  while (pos < ignored.size()) {
    size_t z = ignored.find('\0', pos);
    if (z == std::string::npos) z = ignored.size();
    std::string entry = ignored.substr(pos, z - pos);
    if (entry.size() > 3 && entry.compare(0, 3, "!! ") == 0)
      c.changes.push_back({"ignored_added", as_utf8(entry.substr(3)), ""});
    pos = z + 1;
  }
  return c;
}

namespace {

// The first line of a small regular file, read without following a symlink and without blocking: the file
// may be the run's (a FIFO there would hold retention forever). Empty when it is anything else.
std::string first_line_of_regular_file(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) out.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto nl = out.find('\n');
  return nl == std::string::npos ? out : out.substr(0, nl);
}

}  // namespace

fs::path Workspace::owner_git_dir(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path / ".git", ec))) return {};
  std::string line = first_line_of_regular_file(path / ".git");
  if (line.rfind("gitdir: ", 0) != 0) return {};
  fs::path gitdir = line.substr(8);  // <repo>/.git/worktrees/<name>
  if (gitdir.parent_path().filename() != "worktrees") return {};
  // The `.git` file is the run's to rewrite: only a registration that points back at this very worktree,
  // in a repository outside it, names the owner.
  std::string back = first_line_of_regular_file(gitdir / "gitdir");
  fs::path here = fs::weakly_canonical(fs::absolute(path), ec);
  if (ec || back.empty() || fs::weakly_canonical(fs::path(back), ec) != here / ".git" || ec) return {};
  fs::path owner = fs::weakly_canonical(gitdir.parent_path().parent_path(), ec);
  if (ec || owner.string().rfind(here.string() + "/", 0) == 0) return {};
  return gitdir.parent_path().parent_path();
}

void Workspace::prune(const fs::path& git_dir) {
  if (git_dir.empty() || !fs::is_directory(git_dir)) return;
  RepoLock lock(git_dir.parent_path());  // the repository folder, as create() and remove() lock it
  try {
    git(git_dir, {"worktree", "prune"}, "cannot prune worktrees");
  } catch (const std::exception&) {
  }
}

bool Workspace::remove() const {
  return remove(repo_, path_);
}

bool Workspace::remove(const fs::path& repo, const fs::path& path) {
  RepoLock lock(repo);
  try {
    git(repo, {"worktree", "remove", "--force", "--force", path.string()}, "cannot remove the worktree");
    return true;
  } catch (const std::exception&) {
    std::error_code ec;
    fs::remove_all(path, ec);
    try {
      git(repo, {"worktree", "prune"}, "cannot prune worktrees");
    } catch (const std::exception&) {
    }
    return !fs::exists(path, ec);
  }
}

}  // namespace cp::run
