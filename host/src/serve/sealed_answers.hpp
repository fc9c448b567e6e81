// Answers about sealed runs, kept serialized: a sealed bundle does not change unless someone changes it, so
// the detail of a run is built once (manifest read, reports listed, bundle verified, JSON written) and
// served as the same bytes until its bundle changes.
//
// "Until it changes" is watched two ways. An inotify watch on every folder of the bundle (BundleWatch)
// drops an answer the moment anything in the bundle is written, renamed, made or removed, before the next
// request reads it. And at most once a second per answer served, the bundle's fingerprint (every entry's
// size, inode, mtime, ctime: store::bundle_fingerprint) is taken again and compared with the one the
// answer was built on, which also catches what inotify cannot see (a write through a hard link from
// outside). A change to the host keys (a rotation, a removed key), looked for once a second, drops every
// answer. And no answer is served older than VerifyCache::kReverify: what leaves no trace in inotify or
// the metadata (a write through a shared memory mapping of a page already dirty) is caught when the
// answer is built again and its bundle verified from its files. Only settled answers (a sealed run's,
// verification intact or tampered) are kept.
#pragma once

#include "serve/bundle_watch.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cp::serve {

struct CachedAnswer {
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class SealedAnswers {
 public:
  explicit SealedAnswers(size_t max_runs = 20000);

  // The answer for run `id` (its bundle in `dir`), from the cache when the bundle has not changed since it
  // was built, else from build(), which returns the answer and whether it is settled (worth keeping).
  // Thread-safe; build() runs without the lock.
  CachedAnswer get(const std::string& id, const std::filesystem::path& dir,
                   const std::function<std::pair<CachedAnswer, bool>()>& build);

  size_t size() const;

  // How long a kept answer is served before its fingerprint is checked again.
  static constexpr std::chrono::milliseconds kRecheck{1000};

 private:
  // Drops the answers of bundles that changed; whether `id` is one of them (or every one changed). mu_ held.
  bool drop_changed(const std::string& id);
  struct Entry {
    CachedAnswer answer;
    std::string fingerprint;
    std::chrono::steady_clock::time_point checked, built;
  };
  void check_keys(std::chrono::steady_clock::time_point now);  // mu_ held
  std::string keys_;                                           // host_keys_fingerprint() last seen
  std::chrono::steady_clock::time_point keys_checked_{};
  size_t max_;
  BundleWatch watch_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace cp::serve
