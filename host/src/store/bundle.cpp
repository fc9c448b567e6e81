#include "store/bundle.hpp"
#include "core/json_depth.hpp"

#include "core/sha256.hpp"
#include "store/after_seal.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle_seal.hpp"
#include "store/bundle_verify.hpp"
#include "store/host_key.hpp"
#include "store/seal_ledger.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace cp::store {

namespace fs = std::filesystem;
using nlohmann::json;

void clear_live_marker(const fs::path& root, const std::string& run_id) {
  std::error_code ec;
  fs::remove(live_marker(root, run_id), ec);
}

std::string new_run_id(const std::string& task_id) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%06llx", static_cast<unsigned long long>(rng() & 0xffffff));
  // Keep the id inside the manifest pattern whatever the task id holds.
  std::string base;
  for (char c : task_id.substr(0, 80)) {
    const bool dot_after_dot = c == '.' && !base.empty() && base.back() == '.';  // valid_run_id refuses ".."
    const bool kept = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    base += kept && !dot_after_dot ? c : '-';
  }
  if (base.empty() || !std::isalnum(static_cast<unsigned char>(base[0]))) base = "run" + base;
  return base + "-" + stamp + "-" + suffix;
}

bool valid_run_id(std::string_view run_id) {
  // [A-Za-z0-9][A-Za-z0-9._-]{0,127} without "..": checked by hand, as a catalogue start checks a million
  // ids.
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (run_id.empty() || run_id.size() > 128 || !alnum(run_id[0])) return false;
  for (char c : run_id)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return run_id.find("..") == std::string::npos;
}

int try_lock_bundle(const fs::path& dir) {
  int fd = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::unique_ptr<Bundle> Bundle::create(const fs::path& root, const std::string& run_id, const json& contract,
                                       const json& manifest) {
  if (!valid_run_id(run_id)) throw std::invalid_argument("invalid run id '" + run_id + "'");
  fs::path runs = runs_dir(root);
  fs::path incoming = core::incoming_dir(root) / run_id;
  fs::path final_dir = runs / run_id;
  fs::create_directories(incoming.parent_path());
  if (fs::exists(final_dir)) throw std::runtime_error("run bundle already exists: " + final_dir.string());
  // The live marker first: a crash after it but before the rename leaves a marker recovery simply drops.
  // Created in place (an empty file needs no temp-and-rename) so no other process's recovery ever sees a
  // half-written marker.
  fs::create_directories(core::live_dir(root));
  {
    int mfd = ::open(live_marker(root, run_id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (mfd < 0)
      throw std::system_error(errno, std::generic_category(), "create " + live_marker(root, run_id).string());
    ::close(mfd);
    fsync_dir(core::live_dir(root));
  }
  if (!fs::create_directory(incoming))
    throw std::runtime_error("run bundle already being created: " + incoming.string());

  std::unique_ptr<Bundle> b(new Bundle());
  b->run_id_ = run_id;
  b->lock_fd_ = try_lock_bundle(incoming);
  if (b->lock_fd_ < 0) throw std::system_error(errno, std::generic_category(), "lock " + incoming.string());
  write_json_atomic(incoming / "contract.json", contract);
  b->manifest_ = manifest;
  write_json_atomic(incoming / "manifest.json", manifest);
  { std::ofstream(incoming / "events.jsonl", std::ios::app); }
  fs::create_directories(incoming / "reports");
  fs::create_directories(incoming / "artifacts");
  fsync_dir(incoming);
  if (::rename(incoming.c_str(), final_dir.c_str()) != 0)
    throw std::system_error(errno, std::generic_category(),
                            "rename " + incoming.string() + " to " + final_dir.string());
  fsync_dir(runs);
  fsync_dir(incoming.parent_path());
  b->root_ = root;
  b->dir_ = final_dir;
  // A run's own events are group-committed: an agent's stream of thousands of events costs a handful of
  // fdatasyncs, and the seal (store/bundle_seal.cpp) waits for them all before it is written.
  b->events_ = std::make_unique<EventLog>(final_dir / "events.jsonl", run_id, EventLog::Durability::group);
  // The host's record that it made this bundle: recovery vouches only for bundles it finds here.
  ledger_created(final_dir);
  return b;
}

std::unique_ptr<Bundle> Bundle::open(const fs::path& root, const std::string& run_id,
                                     std::chrono::milliseconds wait) {
  if (!valid_run_id(run_id)) throw std::runtime_error("'" + run_id + "' is not a valid run id");
  fs::path dir = runs_dir(root) / run_id;
  if (!fs::is_directory(dir))
    throw std::runtime_error("no run " + run_id + " under " + runs_dir(root).string());
  std::unique_ptr<Bundle> b(new Bundle());
  auto until = std::chrono::steady_clock::now() + wait;
  while ((b->lock_fd_ = try_lock_bundle(dir)) < 0) {
    if (std::chrono::steady_clock::now() >= until)
      throw std::runtime_error("run " + run_id +
                               " is locked by another process (still running, or being "
                               "decided); try again");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  b->run_id_ = run_id;
  b->root_ = root;
  b->dir_ = dir;
  b->events_ = std::make_unique<EventLog>(dir / "events.jsonl", run_id);
  KeyRing keys;
  try {
    keys = KeyRing::of_dir(key_dir());
  } catch (const KeyError&) {
  }
  finish_cut_seal(root, dir, *b->events_, keys);
  // Verified under the lock, and what the amendment builds on is what was verified: the sealed manifest
  // and the sealed files' hashes, never a second read of files that may have changed since.
  BundleCheck check = verify_bundle(dir, keys);
  if (!check.ok())
    throw std::runtime_error("run " + run_id + " does not verify: " +
                             (check.problems.empty() ? std::string("not sealed") : check.problems.front()));
  if (check.events != b->events_->count() || check.last_hash != b->events_->last_hash())
    throw std::runtime_error("run " + run_id + "'s events changed while it was opened; try again");
  b->guard_ = std::make_unique<SealGuard>();
  b->guard_->verified = check.files;
  b->manifest_ = check.sealed_manifest;
  b->manifest_["events"] = {{"count", check.events}, {"last_hash", check.last_hash}};
  return b;
}

Bundle::~Bundle() {
  events_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void Bundle::write_json(const std::string& rel, const json& doc) {
  if (guard_) guard_->written.insert(rel);
  write_json_atomic(dir_ / rel, doc);
}
void Bundle::write_text(const std::string& rel, std::string_view content) {
  if (guard_) guard_->written.insert(rel);
  write_atomic(dir_ / rel, content);
}

std::string Bundle::read_verified(const std::string& rel) const {
  FileRead f = read_regular_file(dir_ / rel, 1ULL << 30);
  if (f.status != FileRead::Status::ok)
    throw std::runtime_error(rel + " of run " + run_id_ + " cannot be read");
  std::string text = std::move(f.bytes);
  if (guard_) {
    auto it = guard_->verified.find(rel);
    if (it == guard_->verified.end() || it->second != core::sha256_hex(text))
      throw std::runtime_error(rel + " of run " + run_id_ +
                               " is not the sealed file (changed since it was verified)");
  }
  return text;
}

void Bundle::update_manifest(const json& patch) {
  manifest_.merge_patch(patch);
  write_json_atomic(dir_ / "manifest.json", manifest_);
}

void Bundle::seal(const std::string& type, const json& payload, const json& patch,
                  const std::vector<std::pair<std::string, json>>& preceding) {
  json next = manifest_;
  next.merge_patch(patch);
  auto key = HostKey::current();
  if (next.value("status", "") == "awaiting_approval") mark_awaiting(root_, run_id_);
  manifest_ = write_seal(dir_, *events_, type, payload, std::move(next), *key, preceding, guard_.get());
  if (guard_) guard_->verified.clear(), guard_->written.clear(), guard_.reset();
  after_seal(root_, manifest_);
}

}  // namespace cp::store
