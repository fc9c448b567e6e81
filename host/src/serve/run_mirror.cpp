#include "serve/run_mirror.hpp"

#include "core/json_text.hpp"
#include "core/runtime_paths.hpp"
#include "log/log_lanes.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

namespace cp::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// One push carries at most this much of a log: a run with a huge log is copied over several rounds, each a
// short transaction.
constexpr size_t kPushBytes = 4u << 20;
constexpr size_t kPushLines = 2000;
// An event line is at most 8 MiB; a longer line is not read whole (and the run's copy stops there).
constexpr uint64_t kMaxLine = 64u << 20;
// A run whose writes the store refuses (not a connection failure) this many times is given up on.
constexpr int kMaxRefusals = 5;

// A file's bytes, not following a link at its last component; nullopt when it cannot be read.
std::optional<std::string> read_file(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// What events.jsonl holds past `offset`: whole lines, at most kPushLines of them and about kPushBytes (more
// when a single line is longer), and whether they reach the end of the file.
struct LogRead {
  std::vector<std::string> lines;
  uint64_t used = 0;    // bytes of those lines, newlines included
  bool at_end = false;  // nothing (not even part of a line) follows them
};

LogRead read_lines(const fs::path& p, uint64_t offset) {
  LogRead out;
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  const uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (size <= offset) {
    ::close(fd);
    out.at_end = size == offset;
    return out;
  }
  // Only what is there is read: a quiet run costs a stat, not a buffer.
  uint64_t want = std::min<uint64_t>(size - offset, kPushBytes);
  std::string buf;
  for (;;) {
    buf.resize(static_cast<size_t>(want));
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (n <= 0 || buf.find('\n') != std::string::npos || want >= size - offset || want >= kMaxLine) break;
    want = std::min<uint64_t>(size - offset, want * 2);  // one line longer than the window: read more of it
  }
  ::close(fd);
  size_t pos = 0;
  while (pos < buf.size() && out.lines.size() < kPushLines) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string::npos) break;
    out.lines.push_back(buf.substr(pos, nl - pos));
    pos = nl + 1;
  }
  out.used = pos;
  out.at_end = offset + pos == size;
  return out;
}

// The bytes of the first `lines` lines of events.jsonl (whole lines), or nullopt when it has fewer.
std::optional<uint64_t> offset_of_line(const fs::path& p, int64_t lines) {
  std::ifstream in(p, std::ios::binary);
  uint64_t off = 0;
  std::string line;
  for (int64_t i = 0; i < lines; ++i) {
    if (!std::getline(in, line) || in.eof()) return std::nullopt;
    off += line.size() + 1;
  }
  return off;
}

// Every regular file of a sealed bundle but its lock: {path relative to the bundle, path}. A link or
// anything else that is not a regular file is left out: the host writes none into a bundle.
std::vector<std::pair<std::string, fs::path>> bundle_files(const fs::path& bundle) {
  std::vector<std::pair<std::string, fs::path>> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(bundle, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(bundle);
    if (it->is_symlink(ec) || !it->is_regular_file(ec) || rel == ".lock") continue;
    out.emplace_back(rel.generic_string(), it->path());
  }
  return out;
}

// Stages one file chunk by chunk (an empty file is one empty chunk). False when it cannot be read.
bool stage_file(db::RunStore& store, const std::string& run_id, const std::string& rel,
                const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  std::string buf(db::RunStore::kChunk, '\0');
  int chunk = 0;
  for (;;) {
    size_t got = 0;
    while (got < buf.size()) {
      ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ::close(fd);
        return false;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    if (got == 0 && chunk > 0) break;
    try {
      store.stage_chunk(run_id, rel, chunk++, buf.data(), got);
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (got < buf.size()) break;
  }
  ::close(fd);
  return true;
}

void say(log::Level level, const std::string& run_id, const std::string& message) {
  log::Event ev;
  ev.level = level;
  ev.run_id = run_id;
  ev.component = "run_mirror";
  ev.message = message;
  log::emit(ev);
  std::fprintf(stderr, "cp-host serve: %s\n", message.c_str());
}

}  // namespace

RunMirror::RunMirror(fs::path root, std::string conninfo, std::string worker_id)
    : root_(std::move(root)), conninfo_(std::move(conninfo)), worker_id_(std::move(worker_id)) {
  thread_ = std::thread([this] { loop(); });
}

RunMirror::~RunMirror() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RunMirror::track(const std::string& run_id, const std::string& item_id, int attempt) {
  std::lock_guard<std::mutex> l(mu_);
  Run& r = runs_[run_id];
  r.fence = {item_id, attempt, worker_id_};
}

bool RunMirror::finish(const std::string& run_id, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> l(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return false;
  it->second.ended = true;
  poked_ = true;
  cv_.notify_all();
  // While the store is out of reach the wait is short: the scheduler must go on reaping and recording,
  // and the thread pushes the run once the store answers again.
  done_cv_.wait_for(l, failing_ ? std::min(wait, std::chrono::milliseconds(500)) : wait, [&] {
    auto f = runs_.find(run_id);
    return f == runs_.end() || f->second.done || failing_;
  });
  auto f = runs_.find(run_id);
  if (f == runs_.end()) return false;
  const bool ok = f->second.done && f->second.stored_ok;
  if (f->second.done)
    runs_.erase(f);
  else
    f->second.orphan = true;  // nobody waits any more: the thread forgets it once it is done
  return ok;
}

RunMirror::Stats RunMirror::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void RunMirror::connect() {
  if (conn_ && !conn_->broken()) return;
  conn_.reset();
  conn_ = std::make_unique<db::PgConnection>(conninfo_);
  // Its transactions are short and never wait on anyone: one left open (this process paused mid-way)
  // must not hold the fence row for long.
  conn_->exec("SET idle_in_transaction_session_timeout = '5s'");
}

void RunMirror::refused(const std::string& run_id, Run& r) {
  r.done = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.refused;
  }
  say(log::Level::warn, run_id,
      "run " + run_id + " (attempt " + std::to_string(r.fence.attempt) + " of " + r.fence.item_id +
          "): the store refused its events and seal: the attempt no longer holds its fence");
}

RunMirror::Sync RunMirror::sync(const std::string& run_id, Run& r) {
  const fs::path bundle = core::bundle_dir(root_, run_id);
  std::error_code ec;
  if (!fs::is_directory(bundle, ec)) {
    // No bundle (yet): a run refused before it made one leaves nothing to copy.
    if (r.ended) r.done = true;
    return Sync::ok;
  }
  auto manifest = read_file(bundle / "manifest.json");
  const json parsed = manifest ? json::parse(*manifest, nullptr, false) : json();
  if (!parsed.is_object()) return Sync::ok;  // mid-rename, or not yet written
  const fs::path events = bundle / "events.jsonl";
  if (r.offset == 0 && r.stored > 0) {
    auto off = offset_of_line(events, r.stored);
    if (!off) return Sync::ok;  // the store holds more than the file: the file is behind, wait
    r.offset = *off;
  }
  LogRead log = read_lines(events, r.offset);
  db::RunPush p;
  p.run_id = run_id;
  p.fence = r.fence;
  p.manifest = *manifest;
  p.first_seq = r.stored + 1;
  p.lines = std::move(log.lines);
  if (!p.lines.empty()) {
    json last = json::parse(p.lines.back(), nullptr, false);
    if (last.is_object() && last.contains("hash") && last["hash"].is_string()) p.last_hash = last["hash"];
  }
  const std::string status = core::text_of(parsed, "status");
  const bool sealed = status == "sealed" || status == "awaiting_approval";
  // The seal goes once every event is in the store: the process is gone and the log read to its end.
  const bool seal_now = r.ended && log.at_end && sealed;
  if (p.lines.empty() && !seal_now && *manifest == r.manifest) {
    if (r.ended && log.at_end) r.done = true;  // ended without a seal: nothing more will come
    return Sync::ok;
  }
  try {
    connect();
    db::RunStore store(*conn_);
    const int64_t expected = p.first_seq + static_cast<int64_t>(p.lines.size()) - 1;
    db::PushOutcome out = store.push(p);
    if (out.result == db::PushResult::fenced) {
      refused(run_id, r);
      return Sync::ok;
    }
    // A store that holds other than this push's end (more, after a restart of this node; less, a gap)
    // has the offset found again from the line count.
    r.offset =
        out.result == db::PushResult::applied && out.stored_events == expected ? r.offset + log.used : 0;
    r.stored = out.stored_events;
    if (out.result != db::PushResult::applied) return Sync::ok;
    r.manifest = *manifest;
    {
      std::lock_guard<std::mutex> l(mu_);
      stats_.events += static_cast<long long>(p.lines.size());
    }
    if (seal_now && out.stored_events == expected) {
      // The files go up staged, a chunk per statement with no lock held; then one short transaction that
      // checks the fence makes them the run's bundle.
      store.clear_staged(run_id);
      for (const auto& [rel, file] : bundle_files(bundle))
        if (!stage_file(store, run_id, rel, file))
          throw std::runtime_error("cannot read " + file.string() + " of the sealed bundle");
      db::RunPush s;
      s.run_id = run_id;
      s.fence = r.fence;
      s.manifest = *manifest;
      s.first_seq = r.stored + 1;
      s.seal = true;
      db::PushOutcome sealed_out = store.push(s);
      if (sealed_out.result == db::PushResult::fenced) {
        store.clear_staged(run_id);
        refused(run_id, r);
        return Sync::ok;
      }
      if (sealed_out.result != db::PushResult::applied) return Sync::ok;
      r.done = true;
      r.stored_ok = true;
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.sealed;
    } else if (r.ended && log.at_end && !sealed) {
      r.done = true;
    }
    r.refusals = 0;
    return Sync::ok;
  } catch (const db::DbError& e) {
    if (e.transient()) {
      conn_.reset();
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.failures;
      std::fprintf(stderr, "cp-host serve: run_mirror: %s: %s (will retry)\n", run_id.c_str(), e.what());
      return Sync::store_away;
    }
    return given_up_after(run_id, r, e.what());
  } catch (const std::exception& e) {
    return given_up_after(run_id, r, e.what());
  }
}

// The store refused this run's write (not a connection failure: the statement itself), or its bundle could
// not be read. Tried again at the next rounds; after kMaxRefusals the run is left out of the store, and
// other runs go on as before.
RunMirror::Sync RunMirror::given_up_after(const std::string& run_id, Run& r, const std::string& why) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.failures;
  }
  if (++r.refusals < kMaxRefusals) {
    std::fprintf(stderr, "cp-host serve: run_mirror: %s: %s (will retry)\n", run_id.c_str(), why.c_str());
    return Sync::refused_once;
  }
  r.done = true;
  say(log::Level::error, run_id,
      "run " + run_id + " is not copied into the shared store: " + why + " (refused " +
          std::to_string(kMaxRefusals) + " times; other nodes will not list it)");
  return Sync::ok;
}

void RunMirror::resume() {
  connect();
  std::vector<db::RunRow> rows = db::RunStore(*conn_).unsealed_of(worker_id_);
  std::lock_guard<std::mutex> l(mu_);
  for (const db::RunRow& row : rows) {
    // A run of this process is tracked before its first push makes its row: any other is an earlier
    // process's, whose child is gone.
    if (runs_.count(row.run_id)) continue;
    Run& r = runs_[row.run_id];
    r.fence = {row.item_id, row.attempt, worker_id_};
    r.stored = row.events_count;
    r.ended = true;
    r.orphan = true;
  }
}

void RunMirror::loop() {
  auto backoff = std::chrono::milliseconds(250);
  bool resumed = false;
  for (;;) {
    if (!resumed) {
      // The runs an earlier process of this node left unpushed (it stopped, or the database was away when
      // they ended) are pushed now, while their attempts still hold the fence.
      try {
        resume();
        resumed = true;
      } catch (const std::exception& e) {
        conn_.reset();
        std::fprintf(stderr, "cp-host serve: run_mirror: looking for runs left to push: %s (will retry)\n",
                     e.what());
      }
    }
    std::vector<std::string> ids;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, backoff, [this] { return stop_ || poked_; });
      poked_ = false;
      if (stop_) return;
      for (const auto& [id, r] : runs_)
        if (!r.done) ids.push_back(id);
    }
    bool failed = false;
    for (const std::string& id : ids) {
      Run copy;
      {
        std::lock_guard<std::mutex> l(mu_);
        auto it = runs_.find(id);
        if (it == runs_.end()) continue;
        copy = it->second;
      }
      // The push runs on a copy, with no lock held: finish() and track() never wait on the database.
      // Repeated while the run has more to push (a long log goes over several rounds).
      for (int round = 0; round < 64 && !copy.done; ++round) {
        const int64_t before = copy.stored;
        Sync result = sync(id, copy);
        if (result == Sync::store_away) failed = true;
        if (result != Sync::ok || copy.stored == before) break;
      }
      std::lock_guard<std::mutex> l(mu_);
      auto it = runs_.find(id);
      if (it == runs_.end()) continue;
      const bool ended = it->second.ended, orphan = it->second.orphan;
      it->second = copy;
      it->second.ended = ended || copy.ended;
      it->second.orphan = orphan;
      if (orphan && copy.done) runs_.erase(it);
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      failing_ = failed;
    }
    done_cv_.notify_all();
    backoff =
        failed ? std::min(backoff * 2, std::chrono::milliseconds(5000)) : std::chrono::milliseconds(250);
  }
}

}  // namespace cp::serve
