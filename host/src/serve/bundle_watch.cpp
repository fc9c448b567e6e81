#include "serve/bundle_watch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace cp::serve {

namespace fs = std::filesystem;

namespace {

// Everything that changes what a bundle holds. IN_ATTRIB covers chmod, a link count change and utimes;
// IN_DELETE_SELF / IN_MOVE_SELF a folder that went or moved; IN_IGNORED (always reported) a watch the
// kernel dropped.
constexpr uint32_t kMask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                           IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;

// The folders of a bundle's tree, links not followed. False when one could not be opened.
bool folders(const fs::path& top, std::vector<fs::path>& out) {
  std::vector<fs::path> todo{top};
  while (!todo.empty()) {
    fs::path d = todo.back();
    todo.pop_back();
    out.push_back(d);
    DIR* h = ::opendir(d.c_str());
    if (!h) return false;
    while (dirent* e = ::readdir(h)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      bool dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st {};
        dir = ::lstat((d / n).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      if (dir) todo.push_back(d / n);
    }
    ::closedir(h);
  }
  return true;
}

}  // namespace

BundleWatch::BundleWatch(size_t max_bundles) : max_(max_bundles) {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

BundleWatch::~BundleWatch() {
  if (fd_ >= 0) ::close(fd_);
}

bool BundleWatch::watch(const std::string& id, const fs::path& dir) {
  if (fd_ < 0 || max_ == 0) return false;
  std::vector<fs::path> dirs;
  if (!folders(dir, dirs)) return false;
  std::lock_guard lock(mu_);
  forget_locked(id);
  if (by_id_.size() >= max_) return false;
  std::vector<int>& wds = by_id_[id];
  for (const auto& d : dirs) {
    int wd = ::inotify_add_watch(fd_, d.c_str(), kMask);
    if (wd < 0) {
      forget_locked(id);
      return false;
    }
    // Two bundles never share a folder; a descriptor seen again is this bundle's own folder twice (a
    // bind mount): one entry is enough.
    if (by_wd_.emplace(wd, id).second) wds.push_back(wd);
  }
  // A folder made between the walk and its parent's watch has no watch of its own: walked again, the tree
  // must be the one watched. Anything else that changed meanwhile shows up in changed().
  std::vector<fs::path> again;
  if (!folders(dir, again) || again.size() != dirs.size()) {
    forget_locked(id);
    return false;
  }
  return true;
}

std::vector<std::string> BundleWatch::changed(bool& all) {
  all = false;
  std::vector<std::string> out;
  if (fd_ < 0) return out;
  alignas(inotify_event) char buf[16384];
  std::lock_guard lock(mu_);
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: nothing more is queued
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        all = true;
        continue;
      }
      auto it = by_wd_.find(ev->wd);
      if (it == by_wd_.end()) continue;  // a watch already dropped
      std::string id = it->second;
      forget_locked(id);
      out.push_back(std::move(id));
    }
  }
  if (all) {
    for (const auto& [id, w] : by_id_) out.push_back(id);
    while (!by_id_.empty()) forget_locked(by_id_.begin()->first);
  }
  return out;
}

void BundleWatch::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  forget_locked(id);
}

void BundleWatch::forget_locked(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  for (int wd : it->second) {
    ::inotify_rm_watch(fd_, wd);
    by_wd_.erase(wd);
  }
  by_id_.erase(it);
}

}  // namespace cp::serve
