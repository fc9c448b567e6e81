// Runs in PostgreSQL: the index row of every run a worker runs (its manifest as it stands), its events in
// order with their hash chain untouched, and once sealed its whole bundle, each file in compressed chunks.
// A worker writes a run only through push(), and push() commits only while the run's attempt still holds
// its fence (cp_attempt_fences, kept by the queue's log): a node that lost its lease — paused, cut off —
// can neither append nor seal after another took the item over. Any node reads every run back.
#pragma once

#include "db/pg_connection.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cp::db {

// The attempt a run belongs to: the fencing token its writes carry.
struct RunFence {
  std::string item_id;
  int attempt = 0;
  std::string worker_id;
};

// One write of a run: events after those stored, the manifest as it stands, and (once) the seal: the files
// staged before (stage_chunk) become the run's bundle.
struct RunPush {
  std::string run_id;
  RunFence fence;
  std::string manifest;            // manifest.json's text
  int64_t first_seq = 1;           // the seq of lines[0]
  std::vector<std::string> lines;  // whole event lines, without their newline
  std::string last_hash;           // the hash of the last event pushed so far
  bool seal = false;               // the staged files become the bundle, and the run is marked sealed
};

enum class PushResult {
  applied,
  fenced,  // the attempt no longer holds its fence: nothing was written
  gap,     // first_seq is past what is stored: stored_events says where to start again
};

struct PushOutcome {
  PushResult result = PushResult::applied;
  int64_t stored_events = 0;  // events the database holds for the run after the push
};

// A run as the index holds it.
struct RunRow {
  std::string run_id, item_id, worker_id, manifest;
  int attempt = 0;
  int64_t events_count = 0, change = 0;
  bool sealed = false, fenced = false;
};

// What the index holds, for `cp-host db status`.
struct RunStoreSummary {
  int64_t runs = 0, sealed = 0, fenced = 0, open = 0, events = 0, bundle_bytes = 0;
  int64_t staged_bytes = 0;  // uploaded for seals not made yet (a push in progress, or one that died)
};

class RunStore {
 public:
  explicit RunStore(PgConnection& c) : c_(c) {}

  // One short transaction: the fence row locked and checked, the events inserted (those already stored
  // are skipped, so a push repeated after a lost COMMIT is harmless), the index row written, with `seal`
  // the staged files made the bundle, and a NOTIFY on channel cp_runs. DbError on a store failure.
  PushOutcome push(const RunPush& p);

  // A seal's files go up before the seal, one chunk (at most kChunk bytes) per statement and no lock
  // held: staged, invisible to readers until push() with `seal` takes them. The run's row must exist (a
  // push made it). clear_staged() drops what an earlier, interrupted upload left.
  void clear_staged(const std::string& run_id);
  void stage_chunk(const std::string& run_id, const std::string& path, int chunk, const char* data, size_t n);

  // Index rows changed after `change`, oldest change first, at most `limit`.
  std::vector<RunRow> changed_since(int64_t change, int limit);
  std::optional<RunRow> row(const std::string& run_id);
  // The runs of `worker_id` neither sealed nor fenced in the index: what a node that stopped before pushing
  // its runs' seals has left to push.
  std::vector<RunRow> unsealed_of(const std::string& worker_id);
  RunStoreSummary summary();
  // Event lines with seq > after_seq, in order, at most `limit`.
  std::vector<std::string> events(const std::string& run_id, int64_t after_seq, int limit);
  // The paths of a sealed run's stored files; a file's chunk sizes (inflated), in order; one chunk's bytes;
  // and a whole file (for tests: a reader of large files goes chunk by chunk).
  std::vector<std::string> file_paths(const std::string& run_id);
  std::vector<int64_t> chunk_sizes(const std::string& run_id, const std::string& path);
  std::string chunk(const std::string& run_id, const std::string& path, int chunk);
  std::optional<std::string> file(const std::string& run_id, const std::string& path);

  // Stored file chunks hold at most this many bytes before compression.
  static constexpr size_t kChunk = 1u << 20;

 private:
  PgConnection& c_;
};

}  // namespace cp::db
