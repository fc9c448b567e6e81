#include "serve/run_mirror.hpp"

#include "core/runtime_paths.hpp"
#include "log/log_lanes.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

// Up to kPushBytes of events.jsonl from `offset`; whole lines only.
std::string read_from(const fs::path& p, uint64_t offset) {
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out(kPushBytes, '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  size_t end = out.rfind('\n');
  out.resize(end == std::string::npos ? 0 : end + 1);
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

// Every regular file of a sealed bundle but its lock, by path relative to the bundle. A link or anything
// else that is not a regular file is left out: the host writes none into a bundle.
std::vector<db::RunFile> bundle_files(const fs::path& bundle) {
  std::vector<db::RunFile> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(bundle, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(bundle);
    if (!it->is_regular_file(ec) || it->is_symlink(ec) || rel == ".lock") continue;
    if (auto bytes = read_file(it->path())) out.push_back({rel.generic_string(), std::move(*bytes)});
  }
  return out;
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

bool RunMirror::sync(const std::string& run_id, Run& r) {
  const fs::path bundle = core::bundle_dir(root_, run_id);
  std::error_code ec;
  if (!fs::is_directory(bundle, ec)) {
    // No bundle (yet): a run refused before it made one leaves nothing to copy.
    if (r.ended) r.done = true;
    return true;
  }
  auto manifest = read_file(bundle / "manifest.json");
  if (!manifest || json::parse(*manifest, nullptr, false).is_discarded()) return true;  // mid-rename: later
  const fs::path events = bundle / "events.jsonl";
  if (r.offset == 0 && r.stored > 0) {
    auto off = offset_of_line(events, r.stored);
    if (!off) return true;  // the store holds more than the file: the file is behind, wait
    r.offset = *off;
  }
  const std::string chunk = read_from(events, r.offset);
  db::RunPush p;
  p.run_id = run_id;
  p.fence = r.fence;
  p.manifest = *manifest;
  p.first_seq = r.stored + 1;
  size_t used = 0;
  for (size_t pos = 0; pos < chunk.size() && p.lines.size() < kPushLines;) {
    size_t nl = chunk.find('\n', pos);
    p.lines.push_back(chunk.substr(pos, nl - pos));
    used = nl + 1;
    pos = nl + 1;
  }
  if (!p.lines.empty()) {
    json last = json::parse(p.lines.back(), nullptr, false);
    if (last.is_object() && last.contains("hash") && last["hash"].is_string()) p.last_hash = last["hash"];
  }
  const bool caught_up = used == chunk.size() && chunk.size() < kPushBytes;
  const std::string status = json::parse(*manifest, nullptr, false).value("status", "");
  const bool sealed = status == "sealed" || status == "awaiting_approval";
  if (r.ended && caught_up && sealed) p.sealed = bundle_files(bundle);
  if (p.lines.empty() && !p.sealed && *manifest == r.manifest) {
    if (r.ended && caught_up) r.done = true;  // ended without a seal: nothing more will come
    return true;
  }
  try {
    if (!conn_ || conn_->broken()) {
      conn_.reset();
      conn_ = std::make_unique<db::PgConnection>(conninfo_);
    }
    db::RunStore store(*conn_);
    db::PushOutcome out = store.push(p);
    if (out.result == db::PushResult::fenced) {
      r.done = true;
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.refused;
      say(log::Level::warn, run_id,
          "run " + run_id + " (attempt " + std::to_string(r.fence.attempt) + " of " + r.fence.item_id +
              "): the store refused its events and seal: the attempt no longer holds its fence");
      return true;
    }
    if (out.result == db::PushResult::gap) {
      r.stored = out.stored_events;
      r.offset = 0;
      return true;
    }
    r.offset += used;
    r.stored = out.stored_events;
    r.manifest = *manifest;
    std::lock_guard<std::mutex> l(mu_);
    stats_.events += static_cast<long long>(p.lines.size());
    if (p.sealed) {
      r.done = true;
      r.stored_ok = true;
      ++stats_.sealed;
    } else if (r.ended && caught_up && !sealed) {
      r.done = true;
    }
    return true;
  } catch (const std::exception& e) {
    conn_.reset();
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.failures;
    std::fprintf(stderr, "cp-host serve: run_mirror: %s: %s (will retry)\n", run_id.c_str(), e.what());
    return false;
  }
}

void RunMirror::resume() {
  if (!conn_ || conn_->broken()) {
    conn_.reset();
    conn_ = std::make_unique<db::PgConnection>(conninfo_);
  }
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
        if (!sync(id, copy)) {
          failed = true;
          break;
        }
        if (copy.stored == before) break;
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
