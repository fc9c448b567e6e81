#include "serve/run_replicas.hpp"

#include "core/json_text.hpp"
#include "core/runtime_paths.hpp"
#include "db/run_store.hpp"
#include "store/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <thread>
#include <unordered_map>

namespace cp::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kRowsPerPass = 200;
constexpr int kLinesPerRead = 2000;
// A copy holds at most this much of a bundle (a run's default disk budget): past it, files are left out.
constexpr int64_t kMaxCopyBytes = 2LL << 30;
// A run whose copy failed (not the connection) is tried again this many passes, then left as it is.
constexpr int kMaxTries = 10;

// A run id fit to name a folder here: what store::new_run_id makes, and nothing that could leave runs/.
bool safe_run_id(const std::string& id) {
  if (id.empty() || id.size() > 160 || id[0] == '.') return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

// A stored file's path, fit to be written below the copy: relative, no `.`/`..`/empty component, no NUL.
bool safe_rel_path(const std::string& rel) {
  if (rel.empty() || rel.size() > 1024 || rel[0] == '/' || rel.find('\0') != std::string::npos) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == ".." || part == ".lock") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

int64_t count_lines(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  int64_t n = 0;
  std::string line;
  while (std::getline(in, line))
    if (!in.eof()) ++n;
  return n;
}

// Writes one stored file chunk by chunk into a temporary beside `target`, then renames it into place: a
// file of any size costs one chunk of memory. False (nothing written) when it would pass `budget`.
bool copy_file(db::RunStore& store, const std::string& run_id, const std::string& rel, const fs::path& target,
               int64_t& budget) {
  std::vector<int64_t> sizes = store.chunk_sizes(run_id, rel);
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  if (total > budget) return false;
  const fs::path tmp = target.parent_path() / (".copy-" + target.filename().string());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp.string());
  try {
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::string bytes = store.chunk(run_id, rel, static_cast<int>(i));
      for (size_t off = 0; off < bytes.size();) {
        ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
        if (n <= 0) throw std::runtime_error("cannot write " + tmp.string());
        off += static_cast<size_t>(n);
      }
    }
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) throw std::runtime_error("cannot write " + target.string() + ": " + ec.message());
  budget -= total;
  return true;
}

bool append_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  int fd = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(fd, out.data() + off, out.size() - off);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  return true;
}

}  // namespace

struct RunReplicas::State {
  fs::path root;
  std::string conninfo, worker_id;
  std::function<void(const std::string&)> changed;
  std::unique_ptr<db::PgConnection> conn;
  int64_t cursor = 0;
  struct Copy {
    int64_t events = 0;
    bool sealed = false;
    std::string manifest;
  };
  std::unordered_map<std::string, Copy> copies;  // the copies this process has looked at
  std::map<std::string, int> retry;              // copies that failed (not the connection): tries so far
  std::atomic<bool> stop{false};
  std::thread thread;

  void loop();
  void pass(db::RunStore& store);
  // Counts a failed try of a copy; returns the next entry (this one erased once it has had kMaxTries).
  std::map<std::string, int>::iterator failed_again(std::map<std::string, int>::iterator it,
                                                    const std::string& why) {
    const bool last = ++it->second >= kMaxTries;
    std::fprintf(stderr, "cp-host serve: run_replicas: run %s: %s (%s)\n", it->first.c_str(), why.c_str(),
                 last ? "its copy is left as it is" : "will retry");
    return last ? retry.erase(it) : std::next(it);
  }
  void sync(db::RunStore& store, const db::RunRow& row);
};

void RunReplicas::State::sync(db::RunStore& store, const db::RunRow& row) {
  if (!safe_run_id(row.run_id)) return;
  const fs::path bundle = core::bundle_dir(root, row.run_id);
  const fs::path marker = core::replica_marker(root, row.run_id);
  std::error_code ec;
  auto known = copies.find(row.run_id);
  if (known == copies.end()) {
    const bool has_marker = fs::exists(marker, ec), has_bundle = fs::exists(bundle, ec);
    // A bundle of this node's own (never overwritten), or a copy retention cleared (not fetched again).
    if (has_bundle != has_marker) return;
    Copy c;
    if (has_bundle) {
      c.events = count_lines(bundle / "events.jsonl");
      json m = json::parse(std::ifstream(bundle / "manifest.json"), nullptr, false);
      const std::string status = core::text_of(m, "status");
      c.sealed =
          (status == "sealed" || status == "awaiting_approval") && fs::exists(bundle / "seal.json", ec);
    }
    known = copies.emplace(row.run_id, c).first;
  }
  Copy& c = known->second;
  if (c.sealed) return;  // a sealed copy is whole
  fs::create_directories(marker.parent_path(), ec);
  if (!fs::exists(marker, ec)) store::write_atomic(marker, row.worker_id + "\n");
  fs::create_directories(bundle, ec);
  if (ec) throw std::runtime_error("cannot make " + bundle.string() + ": " + ec.message());
  while (c.events < row.events_count) {
    std::vector<std::string> lines = store.events(row.run_id, c.events, kLinesPerRead);
    if (lines.empty()) break;
    if (!append_lines(bundle / "events.jsonl", lines))
      throw std::runtime_error("cannot append to " + (bundle / "events.jsonl").string());
    c.events += static_cast<int64_t>(lines.size());
  }
  if (row.sealed) {
    int64_t budget = kMaxCopyBytes;
    std::vector<std::string> left_out;
    for (const std::string& rel : store.file_paths(row.run_id)) {
      if (!safe_rel_path(rel) || rel == "manifest.json") continue;
      fs::create_directories((bundle / rel).parent_path(), ec);
      if (!copy_file(store, row.run_id, rel, bundle / rel, budget)) left_out.push_back(rel);
    }
    if (!left_out.empty())
      std::fprintf(
          stderr, "cp-host serve: run_replicas: run %s: %zu file(s) left out of its copy (past %lld bytes)\n",
          row.run_id.c_str(), left_out.size(), static_cast<long long>(kMaxCopyBytes));
    // The manifest last: a reader that sees it sealed finds every file in place.
    auto m = store.file(row.run_id, "manifest.json");
    store::write_atomic(bundle / "manifest.json", m ? *m : row.manifest);
    c.events = count_lines(bundle / "events.jsonl");
    c.sealed = true;
  } else if (row.fenced) {
    // Its node lost the attempt's lease and the fence ended it: it will never be sealed. The copy says
    // so, and is final; the item's run is the next attempt's.
    json m = json::parse(row.manifest, nullptr, false);
    if (!m.is_object()) m = json{{"run_id", row.run_id}};
    m["status"] = "fenced";
    m["fenced"] = {
        {"worker", row.worker_id},
        {"reason", "worker " + row.worker_id + " lost its lease on attempt " + std::to_string(row.attempt) +
                       " of " + row.item_id + "; the store refused the run's later events and its seal"}};
    store::write_atomic(bundle / "manifest.json", m.dump());
    c.sealed = true;
  } else if (row.manifest != c.manifest) {
    store::write_atomic(bundle / "manifest.json", row.manifest);
    c.manifest = row.manifest;
  }
  if (changed) changed(row.run_id);
}

void RunReplicas::State::pass(db::RunStore& store) {
  // Copies that failed before are tried again first, from their current row.
  for (auto it = retry.begin(); it != retry.end() && !stop;) {
    std::optional<db::RunRow> row = store.row(it->first);
    try {
      if (row) sync(store, *row);
      it = retry.erase(it);
    } catch (const db::DbError& e) {
      if (e.transient()) throw;
      it = failed_again(it, e.what());
    } catch (const std::exception& e) {
      it = failed_again(it, e.what());
    }
  }
  for (;;) {
    std::vector<db::RunRow> rows = store.changed_since(cursor, kRowsPerPass);
    for (const db::RunRow& row : rows) {
      if (stop) return;
      if (row.worker_id != worker_id) {
        try {
          sync(store, row);
        } catch (const db::DbError& e) {
          if (e.transient()) throw;  // the connection: this row again after a reconnect
          failed_again(retry.emplace(row.run_id, 0).first, e.what());
        } catch (const std::exception& e) {
          failed_again(retry.emplace(row.run_id, 0).first, e.what());
        }
      }
      cursor = row.change;
    }
    if (rows.size() < static_cast<size_t>(kRowsPerPass)) return;
  }
}

void RunReplicas::State::loop() {
  auto backoff = std::chrono::milliseconds(250);
  while (!stop) {
    try {
      if (!conn || conn->broken()) {
        conn.reset();
        conn = std::make_unique<db::PgConnection>(conninfo);
        conn->listen("cp_runs");
      }
      db::RunStore store(*conn);
      pass(store);
      backoff = std::chrono::milliseconds(250);
      conn->wait_notification(std::chrono::milliseconds(500));
    } catch (const std::exception& e) {
      conn.reset();
      std::fprintf(stderr, "cp-host serve: run_replicas: %s (will retry)\n", e.what());
      for (auto waited = std::chrono::milliseconds(0); waited < backoff && !stop;
           waited += std::chrono::milliseconds(50))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

RunReplicas::RunReplicas(fs::path root, std::string conninfo, std::string worker_id,
                         std::function<void(const std::string&)> changed)
    : s_(std::make_unique<State>()) {
  s_->root = std::move(root);
  s_->conninfo = std::move(conninfo);
  s_->worker_id = std::move(worker_id);
  s_->changed = std::move(changed);
  s_->thread = std::thread([s = s_.get()] { s->loop(); });
}

RunReplicas::~RunReplicas() {
  s_->stop = true;
  if (s_->thread.joinable()) s_->thread.join();
}

}  // namespace cp::serve
