// A run bundle on disk: <root>/.runtime-cache/cortexpilot/runs/<run_id>/ (see docs/architecture.md).
// The bundle is the truth of a run: every file but manifest.json is written once, atomically; events go
// to the hash-chained events.jsonl. A live run holds an exclusive flock on <bundle>/.lock, so recovery can
// tell a crashed run (lock free, manifest not sealed) from one still running in another process.
#pragma once

#include "core/runtime_paths.hpp"
#include "store/bundle_seal.hpp"
#include "store/event_log.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cp::store {

// Paths under the runtime root are named in core/runtime_paths.hpp.
using core::runs_dir;
using core::runtime_dir;
using core::worktrees_dir;

// runs/.live/<run_id> exists from a bundle's creation until it is sealed, so that crash recovery looks at
// the few live bundles rather than reading every manifest.
using core::live_marker;
// Removes the marker of a sealed run; never throws.
void clear_live_marker(const std::filesystem::path& root, const std::string& run_id);

// "<task_id>-20261125T101500Z-3f9a1c": sortable by time, unique across processes.
std::string new_run_id(const std::string& task_id);

// True when run_id is a safe folder name (the run_manifest schema's pattern); guards `runs show ../x`.
bool valid_run_id(std::string_view run_id);

class Bundle {
 public:
  // Builds the bundle under runs/.incoming/<run_id> (lock taken, contract.json, manifest.json, an empty
  // events.jsonl), then renames it into runs/<run_id>: a crash never leaves a half-made bundle in runs/.
  // Throws std::runtime_error / std::system_error naming the path on failure.
  static std::unique_ptr<Bundle> create(const std::filesystem::path& root, const std::string& run_id,
                                        const nlohmann::json& contract, const nlohmann::json& manifest);
  // Opens the bundle of a run that has ended (sealed or awaiting approval) to amend it: an approval
  // decision, an evidence decision. Takes the bundle's lock, waiting up to `wait` for another amender;
  // the events log is reopened for appending (a torn tail is truncated), a seal a crash cut short is
  // finished (store::complete_seal), and then the bundle is verified under the lock: the manifest() is the
  // sealed one, and the next seal() refuses to sign a file that changed since but was not written here.
  // Throws std::runtime_error when the run does not exist, is still running elsewhere, or its log does not
  // verify.
  static std::unique_ptr<Bundle> open(const std::filesystem::path& root, const std::string& run_id,
                                      std::chrono::milliseconds wait = std::chrono::seconds(10));
  ~Bundle();
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& run_id() const { return run_id_; }
  EventLog& events() { return *events_; }

  // Atomic writes relative to the bundle; parent folders are created. Throw on failure.
  void write_json(const std::string& rel, const nlohmann::json& doc);
  void write_text(const std::string& rel, std::string_view content);
  // A file of an opened (sealed) bundle, read once and checked against the hash verified at open():
  // what an amendment acts on (a patch to promote, a report to build on) is what was sealed. Throws
  // std::runtime_error when it differs or cannot be read.
  std::string read_verified(const std::string& rel) const;

  // The manifest as last written; update() merges `patch` into it and rewrites manifest.json atomically.
  // Only for a bundle not yet sealed: once sealed, every change goes through seal().
  const nlohmann::json& manifest() const { return manifest_; }
  void update_manifest(const nlohmann::json& patch);

  // Seals the bundle, or re-seals it after an amendment (store/bundle_seal.hpp): `patch` is merged into the
  // manifest, then a `type` event carrying the seal is logged, signed with the process's host key, and the
  // manifest written; then what follows every seal (store/after_seal.hpp: markers, observers). Throws
  // store::KeyError when the host key cannot be used, and on failed writes. `preceding`: plain events logged
  // in the same step, before the seal event.
  void seal(const std::string& type, const nlohmann::json& payload, const nlohmann::json& patch,
            const std::vector<std::pair<std::string, nlohmann::json>>& preceding = {});

 private:
  Bundle() = default;
  std::filesystem::path root_;
  std::filesystem::path dir_;
  std::string run_id_;
  int lock_fd_ = -1;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<SealGuard> guard_;  // open(): the verified files, and what this amendment wrote
  nlohmann::json manifest_;
};

// Tries to take a bundle's lock without waiting. Returns the held fd (close it to release), or -1 when
// another process holds it (the run is live).
int try_lock_bundle(const std::filesystem::path& dir);

}  // namespace cp::store
