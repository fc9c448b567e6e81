#include "run/workspace.hpp"

#include "run/process.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

namespace cp::run {

namespace fs = std::filesystem;

std::string run_git(const fs::path& dir, std::vector<std::string> args, const std::string& what,
                    const std::vector<std::string>& extra_env) {
  ProcessSpec spec;
  spec.argv = {"git", "-c", "core.hooksPath=/dev/null", "-c", "core.quotepath=off", "-C", dir.string()};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = std::chrono::minutes(10);
  if (!extra_env.empty()) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    spec.env = std::move(env);
  }
  std::string out;
  spec.on_stdout = [&out](std::string_view chunk) {
    out.append(chunk);
    return true;
  };
  spec.tail_bytes = 2048;
  ProcessOutcome r = run_process(spec);
  if (!r.ok()) {
    std::string err = r.stderr_tail;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw WorkspaceError(what + ": git " + args.front() + " " + r.describe() +
                         (err.empty() ? "" : ": " + err));
  }
  return out;
}

namespace {

std::string git(const fs::path& dir, std::vector<std::string> args, const std::string& what) {
  return run_git(dir, std::move(args), what);
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
  return w;
}

Collected Workspace::collect() const {
  Collected c;
  git(path_, {"add", "--all", "."}, "cannot stage the worktree");
  c.changes = parse_name_status_z(
      git(path_, {"diff", "--cached", "--name-status", "-z", "-M", commit_, "--"}, "cannot list changes"));
  c.patch = git(path_, {"diff", "--cached", "--binary", commit_, "--"}, "cannot produce the diff");
  // Ignored files: written by the run but invisible to `git add`. List them so the gates judge them too.
  std::string ignored =
      git(path_, {"status", "--porcelain=v1", "-z", "--ignored=traditional", "--untracked-files=all"},
          "cannot list ignored files");
  size_t pos = 0;
  while (pos < ignored.size()) {
    size_t z = ignored.find('\0', pos);
    if (z == std::string::npos) z = ignored.size();
    std::string entry = ignored.substr(pos, z - pos);
    if (entry.size() > 3 && entry.compare(0, 3, "!! ") == 0)
      c.changes.push_back({"ignored_added", entry.substr(3), ""});
    pos = z + 1;
  }
  return c;
}

fs::path Workspace::owner_git_dir(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path / ".git", ec))) return {};
  std::ifstream in(path / ".git");
  std::string line;
  std::getline(in, line);
  if (line.rfind("gitdir: ", 0) != 0) return {};
  fs::path gitdir = line.substr(8);  // <repo>/.git/worktrees/<name>
  if (gitdir.parent_path().filename() != "worktrees") return {};
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
