// Which sealed bundles changed on disk since they were last looked at, without looking at them: an inotify
// watch on every folder of each bundle being watched. A write, a rename, a new or removed entry, a changed
// mode anywhere in the bundle's tree marks it changed at the moment the system call returns, so a reader
// that asks changed() before answering never serves what was true before the write.
//
// What inotify cannot see (a write through a hard link from outside the bundle reaches the inode, not the
// folder's watch) is left to the caller's periodic fingerprint check (serve/sealed_answers.hpp). The set
// is bounded: past max_bundles, watch() refuses and the caller makes room with forget().
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace cp::serve {

class BundleWatch {
 public:
  explicit BundleWatch(size_t max_bundles);
  ~BundleWatch();
  BundleWatch(const BundleWatch&) = delete;
  BundleWatch& operator=(const BundleWatch&) = delete;

  // Starts watching `dir` (its folders, never following a link) under `id`. False when it cannot (no
  // inotify, out of watches, max_bundles watched, the tree changed while it was walked): the caller must
  // not trust a cached
  // answer for it then.
  bool watch(const std::string& id, const std::filesystem::path& dir);
  // The ids whose bundles changed since watch(); their watches are gone (watch again to follow them).
  // `all` is set when the kernel's queue overflowed: every watched bundle must be taken as changed.
  std::vector<std::string> changed(bool& all);
  void forget(const std::string& id);
  bool available() const { return fd_ >= 0; }

 private:
  void forget_locked(const std::string& id);
  int fd_ = -1;
  size_t max_;
  std::mutex mu_;
  std::unordered_map<int, std::string> by_wd_;               // watch descriptor -> bundle id
  std::unordered_map<std::string, std::vector<int>> by_id_;  // bundle id -> its watch descriptors
};

}  // namespace cp::serve
