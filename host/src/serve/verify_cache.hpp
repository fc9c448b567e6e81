// Verify-on-read for the API: a sealed run's detail carries whether its bundle verifies
// (store/bundle_verify.hpp). Hashing a bundle costs a read of every file, so the result is kept per run
// and reused while the bundle's fingerprint (every entry's size, inode, mtime and ctime) is unchanged:
// any write into the bundle changes it, and the next read verifies again.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cp::serve {

class VerifyCache {
 public:
  // {"state": intact|tampered|live, "ok": bool, "problems": [...], "key_id"?}. Thread-safe.
  nlohmann::json check(const std::filesystem::path& bundle);

 private:
  struct Entry {
    std::string fingerprint;
    nlohmann::json result;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace cp::serve
