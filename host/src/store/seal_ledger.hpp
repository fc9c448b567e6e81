// The host's own record of each bundle it made and of the last seal it signed for it, kept in the key
// folder (outside the runtime root, hidden from every run):
//
//   <key dir>/ledger/<id of the runs folder>/<run_id>   "created" | "<seq> <event hash>"
//
// A bundle alone cannot show that a later seal existed: whoever kept a copy of an older seal.json could put
// it back and undo an approval or an evidence decision. The ledger can: verification on this host refuses a
// seal older than the one recorded here. It also tells a bundle this host created from one planted in the
// runs folder, which recovery then does not vouch for.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace cp::store {

struct LedgerEntry {
  bool sealed = false;  // false: created, not sealed yet
  uint64_t seq = 0;
  std::string hash;
};

// Records a bundle's creation / its latest seal. Throw KeyError / std::system_error when the record cannot
// be written (a seal that cannot be recorded is not made).
void ledger_created(const std::filesystem::path& bundle_dir);
void ledger_sealed(const std::filesystem::path& bundle_dir, uint64_t seq, const std::string& hash);

// What the ledger holds for the bundle; nullopt when it holds nothing (another host made it, or no key
// folder is usable here). Never throws.
std::optional<LedgerEntry> ledger_read(const std::filesystem::path& bundle_dir);

}  // namespace cp::store
