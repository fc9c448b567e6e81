// The seal of a run bundle: what binds the verdict users read to what the run did, and what only the host
// can make.
//
// A seal is one event at the end of events.jsonl (RUN_SEALED, RUN_AWAITING_APPROVAL, or an amendment made
// later: APPROVAL_RECORDED, EVIDENCE_PROMOTED, EVIDENCE_REJECTED, RUN_ROLLED_BACK, REPORT_ADDED) whose
// payload carries
//
//   "seal": {"version": 1,
//            "manifest": <manifest.json as it must read, without its `events` counter>,
//            "files": {"count": N, "sha256": <sha256 of the file list below, compact JSON>}}
//
// and `seal.json` beside the manifest: {schema_version, run_id, algorithm "ed25519", key_id, public_key,
// preceding: [events logged in the same step, before it], event: <that whole event>,
// files: [[path, sha256, bytes], ...], signature}, where the signature is the
// host key's over "cp-host seal v1 " + the event's hash. The event hash chains back over every earlier
// event, so one signature binds the log, the manifest and every file (reports, packs, the contract, the
// patch, logs) but manifest.json, events.jsonl, .lock and seal.json themselves.
//
// Writing order, and why: the file list, then seal.json (signed, with the event not yet in the log), then
// the event, then the manifest. seal.json is the commit point: a crash after it is finished by
// complete_seal() from a seal the host signed, so recovery never has to trust (or sign) an event it finds
// in the log.
#pragma once

#include "store/event_log.hpp"
#include "store/host_key.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace cp::store {

inline constexpr const char* kSealFile = "seal.json";

// True for the event types a seal can be carried by.
bool is_seal_event_type(const std::string& type);

// What the signature is over.
std::string seal_message(const std::string& event_hash);

// Bundle entries the seal does not list: the files that hold the seal itself, and their atomic-write
// temporaries (a crash can leave one).
bool outside_seal(const std::string& rel);

struct SealedFile {
  std::string path;  // relative to the bundle, '/'-separated
  std::string sha256;
  uint64_t bytes = 0;
};

// Every regular file the seal covers, sorted by path. Entries that no seal can list (symlinks, FIFOs,
// sockets, devices; names that are not printable UTF-8) go to `unsealable` when given. Throws
// std::system_error when a file cannot be read.
std::vector<SealedFile> list_bundle_files(const std::filesystem::path& dir,
                                          std::vector<std::string>* unsealable = nullptr);
nlohmann::json files_json(const std::vector<SealedFile>& files);  // [[path, sha256, bytes], ...]

// Removes what list_bundle_files() calls unsealable; only a run's scratch folder can hold such entries
// (the run writes it). Returns the removed paths.
std::vector<std::string> prune_unsealable(const std::filesystem::path& dir);

// Seals the bundle at `dir` with a `type` event (see above) and writes the manifest. `manifest` is the
// whole manifest as it must read afterwards; its `events` member is replaced. Returns the manifest as
// written. Throws on any failed write or when `log` moved on while the seal was made.
// `preceding` are events logged with the seal, before it, as one step (an approval's APPROVAL_DECIDED):
// seal.json holds them too, so a crash cannot leave them in the log without the seal after them.
using PlainEvents = std::vector<std::pair<std::string, nlohmann::json>>;
// `guard`, for an amendment: the files as verified when the bundle was opened (path -> sha256) and the
// ones the amendment wrote itself; any other file that changed, appeared or went since makes the seal throw
// rather than sign it.
struct SealGuard {
  std::map<std::string, std::string> verified;
  std::set<std::string> written;
};
nlohmann::json write_seal(const std::filesystem::path& dir, EventLog& log, const std::string& type,
                          nlohmann::json payload, nlohmann::json manifest, const HostKey& key,
                          const PlainEvents& preceding = {}, const SealGuard* guard = nullptr);

// Finishes a seal a crash cut short: seal.json holds a seal signed by a key in `keys` whose event is not in
// the log yet (it is appended) or whose manifest was not written (it is). Anything else is left alone.
// Returns true when the bundle changed. Never throws for what it reads; throws std::system_error when a
// write fails.
bool complete_seal(const std::filesystem::path& dir, EventLog& log, const KeyRing& keys);

}  // namespace cp::store
