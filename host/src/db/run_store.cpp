#include "db/run_store.hpp"

#include <zlib.h>

#include <algorithm>

namespace cp::db {

namespace {

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea as the server sends it in text form (hex: "\x0a1b...").
std::string unhex(const std::string& text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2)
    throw DbError("a stored chunk is not in bytea hex form", false);
  std::string out;
  out.reserve((text.size() - 2) / 2);
  for (size_t i = 2; i < text.size(); i += 2) {
    int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) throw DbError("a stored chunk is not in bytea hex form", false);
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string deflate_chunk(const char* data, size_t n) {
  uLongf cap = compressBound(static_cast<uLong>(n));
  std::string out(cap, '\0');
  // Level 1: bundles are mostly logs and JSON, which compress well even at the fastest level.
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &cap, reinterpret_cast<const Bytef*>(data),
                static_cast<uLong>(n), 1) != Z_OK)
    throw DbError("a bundle chunk could not be compressed", false);
  out.resize(cap);
  return out;
}

std::string inflate_chunk(const std::string& z, size_t size) {
  if (size > RunStore::kChunk) throw DbError("a stored chunk claims more than the chunk size", false);
  std::string out(size, '\0');
  uLongf n = static_cast<uLongf>(size);
  if (uncompress(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(z.data()),
                 static_cast<uLong>(z.size())) != Z_OK ||
      n != size)
    throw DbError("a stored chunk does not inflate to its recorded size", false);
  return out;
}

RunRow row_of(const PgRows& r, int i) {
  RunRow w;
  w.run_id = r.text(i, 0);
  w.item_id = r.text(i, 1);
  w.attempt = static_cast<int>(r.integer(i, 2));
  w.worker_id = r.text(i, 3);
  w.manifest = r.text(i, 4);
  w.events_count = r.integer(i, 5);
  w.sealed = r.text(i, 6) == "t";
  w.fenced = r.text(i, 7) == "t";
  w.change = r.integer(i, 8);
  return w;
}

constexpr const char* kRowColumns =
    "run_id, item_id, attempt, worker_id, manifest, events_count, sealed, fenced, change";

}  // namespace

PushOutcome RunStore::push(const RunPush& p) {
  Transaction t(c_);
  // FOR SHARE: a lease-lost end (which closes the fence) waits for this write, and this write waits for it;
  // either the write lands before the fence closes or it sees the fence closed.
  PgRows f = c_.exec("SELECT attempt, worker_id, open FROM cp_attempt_fences WHERE item_id = $1 FOR SHARE",
                     {p.fence.item_id});
  if (f.size() != 1 || f.integer(0, 0) != p.fence.attempt || f.text(0, 1) != p.fence.worker_id ||
      f.text(0, 2) != "t")
    return {PushResult::fenced, 0};
  c_.exec(
      "INSERT INTO cp_runs (run_id, item_id, attempt, worker_id, manifest) VALUES ($1, $2, $3, $4, $5) "
      "ON CONFLICT (run_id) DO NOTHING",
      {p.run_id, p.fence.item_id, std::to_string(p.fence.attempt), p.fence.worker_id, p.manifest});
  PgRows r =
      c_.exec("SELECT events_count, item_id, attempt, worker_id FROM cp_runs WHERE run_id = $1 FOR UPDATE",
              {p.run_id});
  // A run id belongs to one attempt: another attempt's writes to it are fenced off as well.
  if (r.text(0, 1) != p.fence.item_id || r.integer(0, 2) != p.fence.attempt ||
      r.text(0, 3) != p.fence.worker_id)
    return {PushResult::fenced, 0};
  const int64_t stored = r.integer(0, 0);
  if (p.first_seq > stored + 1) return {PushResult::gap, stored};
  const int64_t last = p.first_seq + static_cast<int64_t>(p.lines.size()) - 1;
  if (!p.lines.empty() && last > stored) {
    // Lines already stored (a push repeated after a lost COMMIT) are skipped by seq.
    const size_t skip = static_cast<size_t>(stored + 1 - p.first_seq);
    std::vector<std::string> fresh(p.lines.begin() + static_cast<std::ptrdiff_t>(skip), p.lines.end());
    c_.exec(
        "INSERT INTO cp_run_events (run_id, seq, line) "
        "SELECT $1, $2::bigint + o - 1, l FROM unnest($3::text[]) WITH ORDINALITY AS t(l, o)",
        {p.run_id, std::to_string(stored + 1), text_array(fresh)});
  }
  const int64_t now_stored = std::max(stored, last);
  if (p.seal) {
    c_.exec("DELETE FROM cp_run_files WHERE run_id = $1 AND NOT staged", {p.run_id});
    c_.exec("UPDATE cp_run_files SET staged = false WHERE run_id = $1 AND staged", {p.run_id});
  }
  // The change counter last: its row lock is held only from here to COMMIT, and orders the commits.
  c_.exec(
      "WITH c AS (UPDATE cp_run_meta SET change = change + 1 WHERE id = 1 RETURNING change) "
      "UPDATE cp_runs SET manifest = $2, events_count = $3, last_hash = CASE WHEN $4 = '' THEN last_hash "
      "ELSE $4 END, sealed = sealed OR $5::boolean, bundle_bytes = CASE WHEN $5::boolean THEN (SELECT "
      "coalesce(sum(size), 0) FROM cp_run_files WHERE run_id = $1) ELSE bundle_bytes END, "
      "change = (SELECT change FROM c), updated_at = now() WHERE run_id = $1",
      {p.run_id, p.manifest, std::to_string(now_stored), p.last_hash, p.seal ? "true" : "false"});
  c_.exec("SELECT pg_notify('cp_runs', $1)", {p.run_id});
  t.commit();
  return {PushResult::applied, now_stored};
}

std::vector<RunRow> RunStore::changed_since(int64_t change, int limit) {
  PgRows r = c_.exec(
      std::string("SELECT ") + kRowColumns + " FROM cp_runs WHERE change > $1 ORDER BY change LIMIT $2",
      {std::to_string(change), std::to_string(limit)});
  std::vector<RunRow> out;
  out.reserve(static_cast<size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) out.push_back(row_of(r, i));
  return out;
}

std::optional<RunRow> RunStore::row(const std::string& run_id) {
  PgRows r = c_.exec(std::string("SELECT ") + kRowColumns + " FROM cp_runs WHERE run_id = $1", {run_id});
  if (r.size() != 1) return std::nullopt;
  return row_of(r, 0);
}

std::vector<RunRow> RunStore::unsealed_of(const std::string& worker_id) {
  PgRows r = c_.exec(std::string("SELECT ") + kRowColumns +
                         " FROM cp_runs WHERE worker_id = $1 AND NOT sealed AND NOT fenced ORDER BY change",
                     {worker_id});
  std::vector<RunRow> out;
  for (int i = 0; i < r.size(); ++i) out.push_back(row_of(r, i));
  return out;
}

RunStoreSummary RunStore::summary() {
  PgRows r = c_.exec(
      "SELECT count(*), count(*) FILTER (WHERE sealed), count(*) FILTER (WHERE fenced), "
      "count(*) FILTER (WHERE NOT sealed AND NOT fenced), coalesce(sum(events_count), 0), "
      "coalesce(sum(bundle_bytes), 0), (SELECT coalesce(sum(size), 0) FROM cp_run_files WHERE staged) "
      "FROM cp_runs");
  return {r.integer(0, 0), r.integer(0, 1), r.integer(0, 2), r.integer(0, 3),
          r.integer(0, 4), r.integer(0, 5), r.integer(0, 6)};
}

std::vector<std::string> RunStore::events(const std::string& run_id, int64_t after_seq, int limit) {
  PgRows r =
      c_.exec("SELECT seq, line FROM cp_run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
              {run_id, std::to_string(after_seq), std::to_string(limit)});
  std::vector<std::string> out;
  for (int i = 0; i < r.size(); ++i) {
    // Consecutive from after_seq + 1: a hole would put an event at the wrong line of the copy.
    if (r.integer(i, 0) != after_seq + 1 + i) break;
    out.push_back(r.text(i, 1));
  }
  return out;
}

void RunStore::clear_staged(const std::string& run_id) {
  c_.exec("DELETE FROM cp_run_files WHERE run_id = $1 AND staged", {run_id});
}

void RunStore::stage_chunk(const std::string& run_id, const std::string& path, int chunk, const char* data,
                           size_t n) {
  if (n > kChunk) throw DbError("a chunk of " + path + " is larger than the chunk size", false);
  c_.exec(
      "INSERT INTO cp_run_files (run_id, path, chunk, staged, size, data) VALUES ($1, $2, $3, true, $4, "
      "$5::bytea) ON CONFLICT (run_id, staged, path, chunk) DO UPDATE SET size = EXCLUDED.size, data = "
      "EXCLUDED.data",
      {run_id, path, std::to_string(chunk), std::to_string(n), hex(deflate_chunk(data, n))});
}

std::vector<std::string> RunStore::file_paths(const std::string& run_id) {
  PgRows r = c_.exec("SELECT DISTINCT path FROM cp_run_files WHERE run_id = $1 AND NOT staged ORDER BY path",
                     {run_id});
  std::vector<std::string> out;
  for (int i = 0; i < r.size(); ++i) out.push_back(r.text(i, 0));
  return out;
}

std::vector<int64_t> RunStore::chunk_sizes(const std::string& run_id, const std::string& path) {
  PgRows r = c_.exec(
      "SELECT chunk, size FROM cp_run_files WHERE run_id = $1 AND path = $2 AND NOT staged ORDER BY chunk",
      {run_id, path});
  std::vector<int64_t> out;
  for (int i = 0; i < r.size(); ++i) {
    if (r.integer(i, 0) != i)
      throw DbError("a stored file of run " + run_id + " misses a chunk: " + path, false);
    out.push_back(r.integer(i, 1));
  }
  return out;
}

std::string RunStore::chunk(const std::string& run_id, const std::string& path, int chunk) {
  PgRows r = c_.exec(
      "SELECT size, data FROM cp_run_files WHERE run_id = $1 AND path = $2 AND chunk = $3 AND NOT staged",
      {run_id, path, std::to_string(chunk)});
  if (r.size() != 1) throw DbError("a stored file of run " + run_id + " misses a chunk: " + path, false);
  const int64_t size = r.integer(0, 0);
  if (size < 0) throw DbError("a stored chunk of " + path + " has a negative size", false);
  return inflate_chunk(unhex(r.text(0, 1)), static_cast<size_t>(size));
}

std::optional<std::string> RunStore::file(const std::string& run_id, const std::string& path) {
  std::vector<int64_t> sizes = chunk_sizes(run_id, path);
  if (sizes.empty()) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < sizes.size(); ++i) out += chunk(run_id, path, static_cast<int>(i));
  return out;
}

}  // namespace cp::db
