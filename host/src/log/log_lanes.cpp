#include "log/log_lanes.hpp"
#include "core/runtime_paths.hpp"

#include "core/clock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <system_error>

namespace cp::log {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::array<Lane, 6> kLanes{Lane::runtime, Lane::error, Lane::e2e,
                                     Lane::access,  Lane::ci,    Lane::governance};

// Appends lines to <dir>/<lane>.jsonl; past max_bytes the file is renamed, gzip-compressed and pruned.
class GzipRotatingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  GzipRotatingSink(fs::path dir, std::string lane, LaneOptions o)
      : dir_(std::move(dir)), lane_(std::move(lane)), o_(o), active_(dir_ / (lane_ + ".jsonl")) {}
  ~GzipRotatingSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (fd_ < 0) open();
    if (fd_ < 0) return;  // a full or read-only disk must not take the host down
    ssize_t n = ::write(fd_, buf.data(), buf.size());
    if (n > 0) size_ += static_cast<size_t>(n);
    if (size_ >= o_.max_bytes) rotate();
  }
  void flush_() override {
    if (fd_ >= 0) ::fdatasync(fd_);
  }

 private:
  // Lazily, at the first line: a command that logs nothing leaves nothing on disk.
  void open() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    fd_ = ::open(active_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st {};
    size_ = fd_ >= 0 && ::fstat(fd_, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  }

  void rotate() {
    ::close(fd_);
    fd_ = -1;
    // Names sort by time, so pruning keeps the newest.
    std::string stamp = core::iso_from_ms(core::now_ms());
    std::string compact;
    for (char c : stamp)
      if (c != '-' && c != ':') compact += c;
    char seq[16];
    std::snprintf(seq, sizeof seq, "%04u", static_cast<unsigned>(seq_++ % 10000));
    fs::path rotated = dir_ / (lane_ + "." + compact + "-" + seq + ".jsonl");
    std::error_code ec;
    fs::rename(active_, rotated, ec);
    open();
    if (ec) return;
    if (gzip(rotated)) fs::remove(rotated, ec);
    prune();
  }

  // Level 1: log lines of one shape compress about tenfold at the fastest level, and a busy lane (access)
  // rotates every few seconds under load, on a thread that shares the cores with the answers.
  static bool gzip(const fs::path& src) {
    fs::path dst = src.string() + ".gz", tmp = src.string() + ".gz.tmp";
    FILE* in = std::fopen(src.c_str(), "rb");
    if (!in) return false;
    gzFile out = gzopen(tmp.c_str(), "wb1");
    if (!out) {
      std::fclose(in);
      return false;
    }
    char buf[1 << 16];
    bool ok = true;
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0)
      if (gzwrite(out, buf, static_cast<unsigned>(n)) != static_cast<int>(n)) ok = false;
    std::fclose(in);
    if (gzclose(out) != Z_OK) ok = false;
    std::error_code ec;
    if (ok) fs::rename(tmp, dst, ec);
    if (!ok || ec) fs::remove(tmp, ec);
    return ok && !ec;
  }

  void prune() {
    std::vector<fs::path> gz;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      std::string n = e.path().filename().string();
      if (n.rfind(lane_ + ".", 0) == 0 && n.size() > 9 && n.compare(n.size() - 9, 9, ".jsonl.gz") == 0)
        gz.push_back(e.path());
    }
    std::sort(gz.begin(), gz.end());
    while (gz.size() > o_.max_files) {
      fs::remove(gz.front(), ec);
      gz.erase(gz.begin());
    }
  }

  fs::path dir_;
  std::string lane_;
  LaneOptions o_;
  fs::path active_;
  int fd_ = -1;
  size_t size_ = 0;
  unsigned seq_ = 0;
};

struct Lanes {
  std::shared_mutex mu;
  fs::path root;
  std::array<std::shared_ptr<spdlog::logger>, kLanes.size()> loggers;
  std::atomic<bool> open{false};
};

Lanes& lanes() {
  static Lanes l;
  return l;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    default:
      return "error";
  }
}

}  // namespace

const char* lane_name(Lane l) {
  switch (l) {
    case Lane::runtime:
      return "runtime";
    case Lane::error:
      return "error";
    case Lane::e2e:
      return "e2e";
    case Lane::access:
      return "access";
    case Lane::ci:
      return "ci";
    case Lane::governance:
      return "governance";
  }
  return "runtime";
}

std::string envelope(const Event& e) {
  json j{{"schema", "log_event.v2"},
         {"ts", core::iso_from_ms(core::now_ms())},
         {"level", level_name(e.level)},
         {"lane", lane_name(e.lane)},
         {"correlation_kind", e.correlation_kind},
         {"correlation_id", e.correlation_id.empty() ? e.run_id : e.correlation_id},
         {"component", e.component.empty() ? "cp-host" : e.component},
         {"message", e.message},
         {"fields", e.fields.is_object() ? e.fields : json::object()}};
  if (!e.run_id.empty()) j["run_id"] = e.run_id;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void open_lanes(const fs::path& root, LaneOptions o) {
  Lanes& l = lanes();
  std::unique_lock lock(l.mu);
  if (l.open && l.root == root) return;
  for (size_t i = 0; i < kLanes.size(); ++i) {
    const char* name = lane_name(kLanes[i]);
    auto sink = std::make_shared<GzipRotatingSink>(core::logs_dir(root) / name, name, o);
    auto logger = std::make_shared<spdlog::logger>(std::string("lane-") + name, sink);
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::trace);
    logger->flush_on(spdlog::level::err);
    l.loggers[i] = logger;
  }
  l.root = root;
  l.open = true;
}

void close_lanes() {
  Lanes& l = lanes();
  std::unique_lock lock(l.mu);
  for (auto& lg : l.loggers)
    if (lg) lg->flush();
  l.loggers = {};
  l.open = false;
}

bool lanes_open() {
  return lanes().open.load();
}

void emit(const Event& e) {
  Lanes& l = lanes();
  if (!l.open) return;
  try {
    std::string line = envelope(e);
    std::shared_lock lock(l.mu);
    auto write = [&](Lane lane, const std::string& text) {
      auto& lg = l.loggers[static_cast<size_t>(lane)];
      if (lg) lg->info(text);
    };
    write(e.lane, line);
    if (e.level == Level::error && e.lane != Lane::error) {
      Event copy = e;
      copy.lane = Lane::error;
      copy.fields["from_lane"] = lane_name(e.lane);
      write(Lane::error, envelope(copy));
    }
  } catch (const std::exception&) {
    // Logging never fails the work it describes.
  }
}

void emit_all(const std::vector<Event>& events) {
  Lanes& l = lanes();
  if (!l.open || events.empty()) return;
  try {
    // One message per lane holding all its lines: the pattern adds the last newline, the sink writes the
    // whole message with one write().
    std::array<std::string, kLanes.size()> text;
    auto add = [&](Lane lane, const std::string& line) {
      std::string& t = text[static_cast<size_t>(lane)];
      if (!t.empty()) t += '\n';
      t += line;
    };
    for (const auto& e : events) {
      add(e.lane, envelope(e));
      if (e.level == Level::error && e.lane != Lane::error) {
        Event copy = e;
        copy.lane = Lane::error;
        copy.fields["from_lane"] = lane_name(e.lane);
        add(Lane::error, envelope(copy));
      }
    }
    std::shared_lock lock(l.mu);
    for (size_t i = 0; i < text.size(); ++i)
      if (!text[i].empty() && l.loggers[i]) l.loggers[i]->info(text[i]);
  } catch (const std::exception&) {
    // Logging never fails the work it describes.
  }
}

void emit_lines(Lane lane, const std::string& lines) {
  Lanes& l = lanes();
  if (!l.open || lines.empty()) return;
  try {
    std::shared_lock lock(l.mu);
    // The pattern adds the last newline.
    auto& lg = l.loggers[static_cast<size_t>(lane)];
    if (lg) lg->info(std::string_view(lines.data(), lines.size() - (lines.back() == '\n' ? 1 : 0)));
  } catch (const std::exception&) {
    // Logging never fails the work it describes.
  }
}

void governance(const std::string& run_id, const std::string& component, const std::string& message,
                const nlohmann::json& fields, bool warn) {
  Event ev;
  ev.level = warn ? Level::warn : Level::info;
  ev.lane = Lane::governance;
  ev.correlation_kind = "run";
  ev.run_id = run_id;
  ev.component = component;
  ev.message = message;
  ev.fields = fields;
  emit(ev);
}

}  // namespace cp::log
