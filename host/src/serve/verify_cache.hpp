// Verify-on-read for the API: a sealed run's detail carries whether its bundle verifies
// (store/bundle_verify.hpp). Hashing a bundle costs a read of every file, so the result is kept per run
// and reused while
//   - the bundle's fingerprint (every entry's size, inode, mtime and ctime) is unchanged: any write made
//     through a file's own metadata changes it, and the next read verifies again;
//   - the host keys are the same (a rotated or removed key is seen at once);
//   - the manifest the caller is about to serve is the very text that was verified;
//   - it is younger than kReverify: a change that leaves no trace in the metadata (a write through a
//     shared memory mapping of a page already dirty) is caught by reading every file again then.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cp::serve {

class VerifyCache {
 public:
  // {"state": intact|tampered|live, "ok": bool, "problems": [...], "key_id"?}. Thread-safe.
  // `manifest_text`: the manifest.json the caller read and will show beside the result; a result is
  // reused only for that very text, and one verified from a manifest that then differs is not kept.
  nlohmann::json check(const std::filesystem::path& bundle, const std::string& manifest_text);
  nlohmann::json check(const std::filesystem::path& bundle);  // the manifest read here

  static constexpr std::chrono::seconds kReverify{60};

 private:
  struct Entry {
    std::string fingerprint, keys, manifest_sha256;
    std::chrono::steady_clock::time_point verified;
    nlohmann::json result;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
};

// The host keys as files (their names, sizes, inodes, mtimes and ctimes): a rotation or a removed key
// changes it. Empty when there is no key folder.
std::string host_keys_fingerprint();

}  // namespace cp::serve
