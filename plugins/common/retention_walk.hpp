// Walking a retention lane's tree (header-only, shared by the lane plugins and their tests): sizes and
// newest modification time of a subtree, by fd-relative calls that never follow a symlink (a symlink is
// counted as itself, so nothing outside the lane is ever measured or reached), and that take a file or
// folder vanishing mid-walk as gone rather than as an error.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace cp::plugins {

struct TreeSum {
  uint64_t bytes = 0;     // apparent sizes (st_size) of every file and link below, itself included; folders
                          // count 0, so a cap means content, not the file system's bookkeeping
  uint64_t files = 0;     // every non-directory entry
  int64_t newest = 0;     // newest st_mtime (seconds) below, itself included
  bool vanished = false;  // the entry itself disappeared before it could be measured
  std::vector<std::string> errors;
};

// Test hook: called with each path just before it is examined (lets a test delete things mid-walk).
inline std::function<void(const std::string&)>& walk_hook() {
  static std::function<void(const std::string&)> hook;
  return hook;
}

namespace detail {
inline void add_stat(TreeSum& s, const struct stat& st) {
  if (!S_ISDIR(st.st_mode)) {
    s.bytes += static_cast<uint64_t>(st.st_size);
    ++s.files;
  }
  if (st.st_mtime > s.newest) s.newest = st.st_mtime;
}

inline void walk_fd(int dirfd, const std::string& path, TreeSum& s, int depth) {
  if (depth > 256) {
    s.errors.push_back(path + ": nested deeper than 256 folders; not measured below");
    return;
  }
  int dup_fd = ::dup(dirfd);
  DIR* d = dup_fd >= 0 ? ::fdopendir(dup_fd) : nullptr;
  if (!d) {
    if (dup_fd >= 0) ::close(dup_fd);
    s.errors.push_back(path + ": " + std::strerror(errno));
    return;
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    std::string child = path + "/" + e->d_name;
    if (walk_hook()) walk_hook()(child);
    struct stat st {};
    if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) s.errors.push_back(child + ": " + std::strerror(errno));
      continue;  // vanished mid-walk: gone, which is what retention wanted anyway
    }
    add_stat(s, st);
    if (S_ISDIR(st.st_mode)) {
      int sub = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        if (errno != ENOENT) s.errors.push_back(child + ": " + std::strerror(errno));
        continue;
      }
      walk_fd(sub, child, s, depth + 1);
      ::close(sub);
    }
  }
  ::closedir(d);
}
}  // namespace detail

// Measures `path` (a file, link or folder) without following symlinks.
inline TreeSum measure(const std::string& path) {
  TreeSum s;
  if (walk_hook()) walk_hook()(path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      s.vanished = true;
    else
      s.errors.push_back(path + ": " + std::strerror(errno));
    return s;
  }
  detail::add_stat(s, st);
  if (S_ISDIR(st.st_mode)) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT)
        s.vanished = true;
      else
        s.errors.push_back(path + ": " + std::strerror(errno));
      return s;
    }
    detail::walk_fd(fd, path, s, 0);
    ::close(fd);
  }
  return s;
}

// Names in a folder ('.'-names excluded: tombstones, markers, temp files), or empty when it is missing.
inline std::vector<std::string> children(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  ::closedir(d);
  return out;
}

}  // namespace cp::plugins
