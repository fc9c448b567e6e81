// `cp-host runs verify`: whether a bundle is what its host sealed. In order: the event chain; that the
// log ends in a seal event that seal.json holds, signed by a trusted key; every file against the seal's
// list, and no file the list lacks; manifest.json against the manifest the seal carries, and its event
// counter against the log; the compiled contract against its recorded sha256. A bundle that says it is
// sealed but has no seal, a missing or unparsable manifest, and a bundle that is not sealed while no live
// process holds it are all tampered.
#pragma once

#include "store/host_key.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cp::store {

struct BundleCheck {
  enum class State {
    intact,    // everything above holds
    tampered,  // something does not; `problems` says what, one line each
    live,      // not sealed yet and a live process holds the run: nothing to check yet
  };
  State state = State::tampered;
  std::vector<std::string> problems;
  uint64_t events = 0;
  std::string last_hash;
  std::string key_id;  // the key that signed the seal (when seal.json names one)
  std::string status, verdict;
  bool seal_pending = false;  // seal.json is ahead of the log: a crash cut a seal short (complete_seal)
  // When intact: the manifest the seal carries (without `events`) and the sealed files' sha256 by path.
  // What acts on a bundle uses these, never a second read of the disk that may have changed since.
  nlohmann::json sealed_manifest;
  std::map<std::string, std::string> files;
  bool ok() const { return state == State::intact; }
};

const char* state_name(BundleCheck::State s);

// True when a live process holds the bundle's lock (a run still going). Never creates the lock file:
// verification writes nothing.
bool held_by_live_process(const std::filesystem::path& dir);

// {"run_id", "ok", "state", "status", "events", "last_hash", "problems", "verdict"?, "key_id"?}: what
// `cp-host runs verify --json` prints and POST /api/runs/{id}/verify answers.
nlohmann::json check_json(const std::string& run_id, const BundleCheck& c);

BundleCheck verify_bundle(const std::filesystem::path& dir, const KeyRing& keys);

// verify_bundle(), and when that fails, again once the bundle's lock is free: a bundle read while an
// amendment writes it (a decision mid-seal) is not called tampered. With `finish_pending`, a seal a crash
// cut short is finished under that lock first (this writes; `runs verify` never passes it).
BundleCheck verify_settled(const std::filesystem::path& dir, const KeyRing& keys,
                           bool finish_pending = false);

// Verify-before-act: "" when the bundle at `dir` verifies against the host's keys, else one line saying
// why it does not, for a refusal (approve, promote, replay, compare refuse a bundle that fails). A seal a
// crash cut short is finished first (when no live process holds the bundle), as recovery would.
std::string refusal_to_act(const std::filesystem::path& dir, BundleCheck* check = nullptr);

// A cheap fingerprint of everything verify_bundle() reads (each entry's path, type, size, inode, mtime and
// ctime): while it is unchanged, a cached result still holds. A rewrite cannot keep ctime.
std::string bundle_fingerprint(const std::filesystem::path& dir);

}  // namespace cp::store
