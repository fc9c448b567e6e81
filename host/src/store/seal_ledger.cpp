#include "store/seal_ledger.hpp"

#include "core/sha256.hpp"
#include "store/atomic_file.hpp"
#include "store/host_key.hpp"

#include <sstream>

namespace cp::store {

namespace fs = std::filesystem;

namespace {

// One folder per runs folder: two project roots may hold runs of the same id.
fs::path entry_path(const fs::path& bundle_dir) {
  std::error_code ec;
  fs::path runs = fs::weakly_canonical(fs::absolute(bundle_dir).parent_path(), ec);
  if (ec) runs = fs::absolute(bundle_dir).lexically_normal().parent_path();
  return key_dir() / "ledger" / core::sha256_hex(runs.string()).substr(0, 24) / bundle_dir.filename();
}

void write_entry(const fs::path& bundle_dir, const std::string& text) {
  fs::path p = entry_path(bundle_dir);
  fs::create_directories(p.parent_path());
  write_atomic(p, text);
}

}  // namespace

void ledger_created(const fs::path& bundle_dir) {
  write_entry(bundle_dir, "created\n");
}

void ledger_sealed(const fs::path& bundle_dir, uint64_t seq, const std::string& hash) {
  write_entry(bundle_dir, std::to_string(seq) + " " + hash + "\n");
}

std::optional<LedgerEntry> ledger_read(const fs::path& bundle_dir) {
  try {
    FileRead f = read_regular_file(entry_path(bundle_dir), 160);
    if (f.status != FileRead::Status::ok || f.bytes.empty()) return std::nullopt;
    std::istringstream in(f.bytes);
    std::string first;
    in >> first;
    LedgerEntry e;
    if (first == "created") return e;
    e.sealed = true;
    e.seq = std::stoull(first);
    in >> e.hash;
    return e;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace cp::store
