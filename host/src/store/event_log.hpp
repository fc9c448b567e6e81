// events.jsonl: an append-only, SHA-256 hash-chained log of a run's events.
// Line format (schemas/event.schema.json): {seq, ts, run_id, type, payload, prev_hash, hash}, where
// hash = core::sha256_hex(prev_hash + canonical JSON of {payload, run_id, seq, ts, type}) and the first
// prev_hash is 64 zeros. Canonical JSON = nlohmann's dump() (object keys sorted, no spaces).
#pragma once

#include "core/clock.hpp"
#include "core/sha256.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace cp::store {

struct ChainCheck {
  bool ok = true;
  uint64_t events = 0;       // valid events read
  std::string last_hash;     // hash of the last valid event (64 zeros when none)
  uint64_t bad_line = 0;     // 1-based line of the first problem, 0 when none
  std::string reason;        // what is wrong at bad_line
  bool torn_tail = false;    // the only problem is an unterminated last line (a crash mid-append)
  uint64_t valid_bytes = 0;  // bytes up to the end of the last valid line
};

// The longest line a log may hold: a plugin event's payload is capped at 1 MiB, and the host's own events
// (a seal carries the manifest) stay far below this.
inline constexpr size_t kMaxEventLine = 8u << 20;

// Reads and checks a log without changing it, in bounded memory; anything but a regular file fails.
ChainCheck verify_event_log(const std::filesystem::path& path);

std::string zero_hash();
using core::now_utc_iso;  // 2026-11-25T10:00:00.123Z (core/clock.hpp)

class EventLog {
 public:
  // every_event: append() returns once its line is on disk (one fdatasync per event).
  // group: append() returns once its line is written; a flusher thread runs one fdatasync for all the
  //   events written while the previous one ran (group commit), and sync() waits until every event
  //   appended so far is on disk. A process crash loses nothing (the lines are in the page cache); a power
  //   loss loses at most the events of the fdatasync in flight, and recovery cuts a torn tail as ever.
  //   What must outlive a power loss (a seal and everything before it) is followed by sync().
  // none: never synced (tests and benchmarks).
  enum class Durability { every_event, group, none };

  // Opens (creating if needed) a run's log for appending. A torn last line from a crash is truncated
  // (reported in truncated_bytes()); any other chain problem throws std::runtime_error: a log that does
  // not verify is never appended to.
  EventLog(std::filesystem::path path, std::string run_id, Durability durability = Durability::every_event);
  ~EventLog();  // waits for the flusher: every event written is on disk when a group log is closed
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends one event; thread-safe. Returns the written event. Throws on I/O failure.
  nlohmann::json append(const std::string& type, nlohmann::json payload);

  // The event append() would write next, without writing it: a seal signs an event before it is in the
  // log (store/bundle_seal.hpp). append_prepared() then writes exactly that event; it throws when the log
  // moved on in between (the event's seq or prev_hash no longer follow).
  // With `after` (an event prepare() returned), the event that would follow that one.
  nlohmann::json prepare(const std::string& type, nlohmann::json payload,
                         const nlohmann::json* after = nullptr) const;
  void append_prepared(const nlohmann::json& event);

  // Returns once every event appended before the call is on disk; throws when an fdatasync failed (the
  // log must then not be trusted to hold them). Free for every_event and none.
  void sync();

  uint64_t count() const;
  std::string last_hash() const;
  uint64_t truncated_bytes() const { return truncated_; }

 private:
  void write_locked(const nlohmann::json& event);  // writes one chained event; mu_ held
  void write_line_locked(const std::string& line, const std::string& hash);  // the same, as its line
  void flush_loop();                                                         // the group flusher's thread
  std::filesystem::path path_;
  std::string run_id_;
  Durability durability_;
  int fd_ = -1;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;
  std::string last_hash_;
  uint64_t truncated_ = 0;
  // Group commit (mu_ guards all of these): events up to durable_ are on disk; the flusher waits on
  // flush_cv_ for seq_ to pass durable_, sync() waits on durable_cv_.
  uint64_t durable_ = 0;
  int flush_error_ = 0;  // errno of a failed fdatasync: every later sync() throws
  int waiters_ = 0;      // sync() calls waiting: the flusher then starts its round at once
  // How long the flusher lets events gather before a round nobody waits for: the most a power loss can
  // take beyond the round in flight.
  static constexpr std::chrono::milliseconds kGroupWindow{5};
  bool stopping_ = false;
  std::condition_variable flush_cv_, durable_cv_;
  std::thread flusher_;  // started with the first append of a group log
};

// The hash an event must carry, from its fields and prev_hash.
std::string event_hash(const nlohmann::json& event);

}  // namespace cp::store
