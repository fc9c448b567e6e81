// The contracts, packs and policies under the runtime root, with what `cp-host validate` says of each:
// the answers of GET /api/contracts and GET /api/policies.
//
// The folders are the operator's, but the API must never become a way to read what lies outside the root,
// nor be stopped by one odd file. So a file is found from lstat alone (a symlink is never followed: it is
// listed as an error entry saying where it points), read beneath the root with no link followed on the
// way (store::read_regular_file_beneath: a FIFO cannot block it, nothing over the size limit is read), and
// what was read is validated as a copy in a private folder, never in place. Counts and bytes are bounded;
// what is past a bound is an error entry, or cut off with `truncated`.
//
// Validation is cached per file by (path, mtime, size) and by the stamp of packs/ and policies/ (a
// contract's validity depends on its pack and on the policies), so a repeated request re-validates only
// what changed.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

namespace cp::plugin {
class Registry;
}

namespace cp::serve {

struct RootDocumentLimits {
  size_t max_files = 2000;              // per folder (contracts/, packs/, policies/)
  uint64_t max_file_bytes = 16u << 20;  // what `cp-host validate` reads at most
  uint64_t max_read_bytes = 64u << 20;  // read per request, all files together
  int max_depth = 16;                   // folders below contracts/, packs/, policies/
};

class RootDocuments {
 public:
  explicit RootDocuments(RootDocumentLimits limits = {}) : limits_(limits) {}

  // {"contracts": [...], "count", "valid", "invalid", "errors", "truncated"}. Each entry: path (relative to
  // the root), state ("valid"; "invalid" with `diagnostics`; "error" with `error` {code, message}), kind,
  // task_id, runner, role, pack, size, modified_at. `registry` (may be null) is what plugin references are
  // checked against, as the server's runs would be.
  nlohmann::json contracts(const std::filesystem::path& root, const plugin::Registry* registry);
  // {"policies": [...], "packs": [...], "count", "invalid", "errors", "truncated"}. Each entry: path, kind,
  // state, sha256, size, modified_at, diagnostics, content (the parsed document).
  nlohmann::json policies(const std::filesystem::path& root, const plugin::Registry* registry);

 private:
  // Brings packs/ and policies/ up to date (caller holds mu_); `budget` is what may still be read.
  void refresh_references(const std::filesystem::path& root, const plugin::Registry* registry,
                          uint64_t& budget);

  RootDocumentLimits limits_;
  std::mutex mu_;  // one validation at a time; guards everything below
  struct Cached {
    std::string key;  // kind, mtime, size, and the references' stamp
    nlohmann::json entry;
  };
  std::map<std::string, Cached> contracts_;  // path -> its last entry
  std::string references_stamp_;
  nlohmann::json references_;                           // {"packs", "policies", "truncated"} of that stamp
  std::map<std::string, std::string> reference_bytes_;  // path -> bytes, mirrored to validate contracts
};

}  // namespace cp::serve
