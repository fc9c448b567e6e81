// The `agents` runner's file tools reach the worktree only through this: a descriptor of the worktree opened
// once, and every path resolved beneath it by openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV. The tools run inside cp-host, with its rights and outside the
// run's sandbox, while the run's own processes can plant or swap symlinks in the worktree at any moment; a
// check of the path followed by a second lookup to open it (which follows symlinks again) can be raced, so
// the check and the open are the same lookup, done by the kernel. Missing folders are made one level at a
// time with mkdirat on the descriptor of the level above, which is itself such a lookup; the file is opened
// O_NOFOLLOW | O_NONBLOCK (a FIFO cannot hang the host) and must be a regular file.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace cp::plugins::agents {

// What every refusal of an escaping path says, whichever rule the kernel applied.
inline constexpr const char* kOutsideWorktree = "path leaves the worktree or crosses a symbolic link";

class WorktreeFiles {
 public:
  WorktreeFiles() = default;
  WorktreeFiles(const WorktreeFiles&) = delete;
  WorktreeFiles& operator=(const WorktreeFiles&) = delete;
  ~WorktreeFiles() {
    if (root_ >= 0) ::close(root_);
  }

  // Opens the worktree; on failure every call below answers with the reason. The worktree's own path is
  // the host's, not the model's, so it is opened the ordinary way.
  void open(const std::string& worktree) {
    root_ = ::open(worktree.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_ < 0) root_error_ = "error: the worktree cannot be opened: " + std::string(std::strerror(errno));
  }

  // Up to `limit` bytes of the regular file at `rel`. Returns the tool's answer: the content, or an error.
  std::string read(const std::string& rel, size_t limit) const {
    Walk w;
    if (std::string e = walk(rel, false, w); !e.empty()) return e;
    Fd f(open_beneath(w.dir.get(), w.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0));
    if (f.get() < 0) return failure(errno, "cannot read " + rel);
    if (std::string e = regular_blocking(f.get(), rel); !e.empty()) return e;
    std::string out(limit, '\0');
    size_t got = 0;
    while (got < limit) {
      ssize_t n = ::read(f.get(), out.data() + got, limit - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return "error: cannot read " + rel + ": " + std::strerror(errno);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
    return out;
  }

  // Writes `content` to `rel` (made, with any missing folders, or truncated). Returns an empty string on
  // success, with `existed` telling whether the file was there before, or the tool's error answer.
  std::string write(const std::string& rel, const std::string& content, bool& existed) const {
    Walk w;
    if (std::string e = walk(rel, true, w); !e.empty()) return e;
    Fd f;
    // O_EXCL first tells a new file from an existing one; the existing one is then opened without
    // O_TRUNC, so nothing is cut before it is known to be a regular file.
    for (int attempt = 0; attempt < 8 && f.get() < 0; ++attempt) {
      existed = false;
      f = Fd(open_beneath(w.dir.get(), w.name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0666));
      if (f.get() >= 0 || errno != EEXIST) break;
      existed = true;
      f = Fd(open_beneath(w.dir.get(), w.name.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0));
      if (f.get() < 0 && errno != ENOENT) break;  // ENOENT: removed in between, try again
    }
    if (f.get() < 0) return failure(errno, "cannot write " + rel);
    if (std::string e = regular_blocking(f.get(), rel); !e.empty()) return e;
    if (existed && ::ftruncate(f.get(), 0) != 0)
      return "error: cannot write " + rel + ": " + std::strerror(errno);
    for (size_t done = 0; done < content.size();) {
      ssize_t n = ::write(f.get(), content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return "error: cannot write " + rel + ": " + std::strerror(errno);
      done += static_cast<size_t>(n);
    }
    return "";
  }

 private:
  class Fd {
   public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd& operator=(Fd&& o) noexcept {
      if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
      }
      return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
      if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

   private:
    int fd_ = -1;
  };

  // The folder holding the file (a descriptor reached beneath the worktree) and the file's name in it.
  struct Walk {
    Fd dir;
    std::string name;
  };

  static int open_beneath(int dirfd, const char* path, int flags, mode_t mode) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
    how.mode = (flags & O_CREAT) ? mode : 0;  // openat2 refuses a mode without O_CREAT
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    for (int attempt = 0;; ++attempt) {
      long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
      if (fd >= 0) return static_cast<int>(fd);
      // EAGAIN: a rename or mount raced the lookup; the kernel asks for a retry rather than guess.
      if (errno == EINTR || (errno == EAGAIN && attempt < 8)) continue;
      return -1;
    }
  }

  // The tool's answer for a failed lookup or open.
  static std::string failure(int err, const std::string& what) {
    if (err == ELOOP || err == EXDEV) return std::string("refused: ") + kOutsideWorktree;
    if (err == ENOSYS)
      return "error: this kernel has no openat2(2), which the file tools need to stay inside the worktree";
    if (err == ENOENT) return "error: " + what;
    return "error: " + what + ": " + std::strerror(err);
  }

  // The opened file must be a regular file; then reads and writes may block as usual.
  static std::string regular_blocking(int fd, const std::string& rel) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return "error: cannot stat " + rel + ": " + std::strerror(errno);
    if (!S_ISREG(st.st_mode)) return "error: " + rel + " is not a regular file";
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
      return "error: cannot use " + rel + ": " + std::strerror(errno);
    return "";
  }

  // Splits `rel` into folders and a file name and opens the folders one level at a time beneath the
  // worktree, making missing ones when `create`. Returns an empty string, or the tool's error answer.
  std::string walk(const std::string& rel, bool create, Walk& w) const {
    if (root_ < 0) return root_error_;
    if (rel.empty()) return "refused: a relative path inside the repository is required";
    if (rel.find('\0') != std::string::npos) return "refused: the path holds a NUL byte";
    std::filesystem::path p(rel);
    if (p.is_absolute()) return std::string("refused: ") + kOutsideWorktree;
    // '.' and 'a/..' are folded here, so each level below is one plain name; a '..' left at the front
    // would climb out of the worktree.
    p = p.lexically_normal();
    std::vector<std::string> parts;
    for (const auto& c : p) parts.push_back(c.string());
    if (!parts.empty() && parts.front() == "..") return std::string("refused: ") + kOutsideWorktree;
    if (parts.empty() || parts.back().empty() || parts.back() == ".")
      return "error: " + rel + " names a folder, not a file";
    w.name = parts.back();
    parts.pop_back();
    int cur = root_;
    for (const auto& name : parts) {
      int fd = open_beneath(cur, name.c_str(), O_PATH | O_DIRECTORY, 0);
      if (fd < 0 && errno == ENOENT && create) {
        // mkdirat never follows a symlink at the new name; a name taken meanwhile is judged on reopening.
        if (::mkdirat(cur, name.c_str(), 0777) != 0 && errno != EEXIST)
          return failure(errno, "cannot make a folder for " + rel);
        fd = open_beneath(cur, name.c_str(), O_PATH | O_DIRECTORY, 0);
      }
      if (fd < 0) return failure(errno, std::string(create ? "cannot write " : "cannot read ") + rel);
      w.dir = Fd(fd);
      cur = fd;
    }
    if (w.dir.get() < 0) {
      int fd = ::fcntl(root_, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return "error: " + std::string(std::strerror(errno));
      w.dir = Fd(fd);
    }
    return "";
  }

  int root_ = -1;
  std::string root_error_ = "error: the worktree is not open";
};

}  // namespace cp::plugins::agents
