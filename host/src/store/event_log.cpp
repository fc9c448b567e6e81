#include "store/event_log.hpp"

#include "core/json_depth.hpp"

#include "core/sha256.hpp"
#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace cp::store {

using nlohmann::json;

std::string zero_hash() {
  return std::string(64, '0');
}

std::string event_hash(const json& e) {
  json body{{"seq", e.at("seq")},
            {"ts", e.at("ts")},
            {"run_id", e.at("run_id")},
            {"type", e.at("type")},
            {"payload", e.at("payload")}};
  return core::sha256_hex(e.at("prev_hash").get<std::string>() +
                          body.dump(-1, ' ', false, json::error_handler_t::replace));
}

namespace {

std::string dumped(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// An event as text, built once: the canonical body hashed and the line written are put together from the
// payload's one dump, in the bytes nlohmann's dump() of the whole event gives (keys sorted: hash, payload,
// prev_hash, run_id, seq, ts, type), which verify_event_log() checks line by line.
struct EventText {
  std::string hash, line;  // line without its '\n'
};

EventText event_text(uint64_t seq, const std::string& ts, const std::string& run_id, const std::string& type,
                     const std::string& payload_text, const std::string& prev_hash) {
  const std::string run = dumped(json(run_id)), when = dumped(json(ts)), kind = dumped(json(type));
  const std::string n = std::to_string(seq);
  std::string body;
  body.reserve(prev_hash.size() + payload_text.size() + run.size() + when.size() + kind.size() + 64);
  body.append(prev_hash).append("{\"payload\":").append(payload_text).append(",\"run_id\":").append(run);
  body.append(",\"seq\":").append(n).append(",\"ts\":").append(when).append(",\"type\":").append(kind);
  body.append("}");
  EventText t;
  t.hash = core::sha256_hex(body);
  t.line.reserve(body.size() + 160);
  t.line.append("{\"hash\":\"").append(t.hash).append("\",\"payload\":").append(payload_text);
  t.line.append(",\"prev_hash\":").append(dumped(json(prev_hash))).append(",\"run_id\":").append(run);
  t.line.append(",\"seq\":").append(n).append(",\"ts\":").append(when).append(",\"type\":").append(kind);
  t.line.append("}");
  return t;
}

}  // namespace

ChainCheck verify_event_log(const std::filesystem::path& path) {
  ChainCheck c;
  c.last_hash = zero_hash();
  // Whoever can write the bundle may leave a FIFO (a read would block), a symlink, or a sparse file of
  // gigabytes here: only a regular file is read, in blocks, one line of at most kMaxEventLine at a time.
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    c.ok = false;
    c.bad_line = 1;
    c.reason = fd < 0 ? "cannot read " + path.string() : path.string() + " is not a regular file";
    return c;
  }
  std::string content;  // the unparsed rest: at most one partial line plus one block
  std::vector<char> block(1 << 20);
  bool eof = false;
  auto fill = [&]() {
    while (!eof) {
      ssize_t n = ::read(fd, block.data(), block.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof = true;
        break;
      }
      content.append(block.data(), static_cast<size_t>(n));
      if (content.find('\n') != std::string::npos || content.size() > kMaxEventLine) break;
    }
  };
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  size_t pos = 0;
  uint64_t base = 0;  // bytes of the file before content[0]
  uint64_t line_no = 0;
  std::string run_id;
  fill();
  for (;;) {
    if (content.find('\n', pos) == std::string::npos) {
      base += pos;
      content.erase(0, pos);
      pos = 0;
      if (content.size() <= kMaxEventLine) fill();
    }
    if (pos >= content.size()) break;
    ++line_no;
    size_t nl = content.find('\n', pos);
    if (nl == std::string::npos && content.size() - pos > kMaxEventLine) {
      c.ok = false;
      c.bad_line = line_no;
      c.reason = "a line longer than " + std::to_string(kMaxEventLine >> 20) + " MiB is not an event";
      return c;
    }
    if (nl == std::string::npos) {
      // The last append never finished: a crash between write and newline.
      c.ok = false;
      c.torn_tail = true;
      c.bad_line = line_no;
      c.reason =
          "unterminated last line (" + std::to_string(content.size() - pos) + " bytes): torn by a crash";
      return c;
    }
    std::string line = content.substr(pos, nl - pos);
    auto bad = [&](const std::string& why) {
      c.ok = false;
      c.bad_line = line_no;
      c.reason = why;
      return c;
    };
    if (!core::json_depth_ok(line)) return bad("nested too deep to be an event");
    json e = json::parse(line, nullptr, false);
    if (e.is_discarded() || !e.is_object()) return bad("not a JSON object");
    for (const char* k : {"seq", "ts", "run_id", "type", "payload", "prev_hash", "hash"})
      if (!e.contains(k)) return bad(std::string("missing field ") + k);
    if (!e["seq"].is_number_unsigned() || e["seq"].get<uint64_t>() != c.events + 1)
      return bad("seq " + e["seq"].dump() + " where " + std::to_string(c.events + 1) + " was expected");
    if (!e["prev_hash"].is_string() || e["prev_hash"].get<std::string>() != c.last_hash)
      return bad("prev_hash does not match the hash of event " + std::to_string(c.events));
    if (run_id.empty()) run_id = e["run_id"].is_string() ? e["run_id"].get<std::string>() : "";
    if (e["run_id"] != run_id) return bad("run_id changes within the log");
    std::string want;
    try {
      want = event_hash(e);
    } catch (const std::exception& ex) {
      return bad(std::string("cannot hash: ") + ex.what());
    }
    if (!e["hash"].is_string() || e["hash"].get<std::string>() != want)
      return bad("hash mismatch: the event was altered after it was written");
    // The line itself as the host writes it: a reformatted line (spaces, escapes, key order) hashes alike
    // but is not the line that was written.
    if (line != e.dump(-1, ' ', false, json::error_handler_t::replace))
      return bad("the line is not in the form the host writes (it was reformatted)");
    c.last_hash = want;
    ++c.events;
    pos = nl + 1;
    c.valid_bytes = base + pos;
  }
  return c;
}

EventLog::EventLog(std::filesystem::path path, std::string run_id, Durability durability)
    : path_(std::move(path)), run_id_(std::move(run_id)), durability_(durability) {
  last_hash_ = zero_hash();
  std::error_code ec;
  if (std::filesystem::exists(path_, ec)) {
    ChainCheck c = verify_event_log(path_);
    if (!c.ok && !c.torn_tail)
      throw std::runtime_error(path_.string() + ":" + std::to_string(c.bad_line) + ": " + c.reason);
    if (c.torn_tail) {
      truncated_ = std::filesystem::file_size(path_) - c.valid_bytes;
      if (::truncate(path_.c_str(), static_cast<off_t>(c.valid_bytes)) != 0)
        throw std::system_error(errno, std::generic_category(), "truncate " + path_.string());
    }
    seq_ = c.events;
    last_hash_ = c.last_hash;
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path_.string());
  if (truncated_ > 0) ::fsync(fd_);
  durable_ = seq_;
}

EventLog::~EventLog() {
  if (flusher_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    flush_cv_.notify_all();
    flusher_.join();
  }
  if (fd_ >= 0) ::close(fd_);
}

// One fdatasync covers every line written before it starts: while it runs, appends go on, and the next
// round covers them all. The lock is never held across the fdatasync.
void EventLog::flush_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    flush_cv_.wait(lock, [this] { return stopping_ || (seq_ > durable_ && flush_error_ == 0); });
    if (seq_ <= durable_ || flush_error_ != 0) return;  // stopping, and nothing (more) can be made durable
    // A short window for more events to join this round, unless someone waits for it: each fdatasync of
    // an appended file commits the journal, and appends stall while it does, so fewer rounds carry more.
    if (waiters_ == 0 && !stopping_)
      flush_cv_.wait_for(lock, kGroupWindow, [this] { return waiters_ > 0 || stopping_; });
    uint64_t target = seq_;
    lock.unlock();
    int err = ::fdatasync(fd_) == 0 ? 0 : errno;
    lock.lock();
    if (err != 0)
      flush_error_ = err;
    else
      durable_ = target;
    durable_cv_.notify_all();
  }
}

void EventLog::sync() {
  if (durability_ != Durability::group) return;
  std::unique_lock lock(mu_);
  uint64_t want = seq_;
  ++waiters_;
  flush_cv_.notify_one();
  durable_cv_.wait(lock, [&] { return durable_ >= want || flush_error_ != 0; });
  --waiters_;
  if (durable_ < want)
    throw std::system_error(flush_error_, std::generic_category(), "fdatasync " + path_.string());
}

json EventLog::prepare(const std::string& type, json payload, const json* after) const {
  if (!payload.is_object()) payload = json{{"value", std::move(payload)}};
  std::lock_guard lock(mu_);
  uint64_t seq = after ? after->at("seq").get<uint64_t>() + 1 : seq_ + 1;
  std::string prev = after ? after->at("hash").get<std::string>() : last_hash_;
  json e{{"seq", seq},   {"ts", now_utc_iso()},           {"run_id", run_id_},
         {"type", type}, {"payload", std::move(payload)}, {"prev_hash", prev}};
  e["hash"] = event_hash(e);
  return e;
}

void EventLog::append_prepared(const json& e) {
  std::lock_guard lock(mu_);
  if (e.value("seq", 0ULL) != seq_ + 1 || e.value("prev_hash", "") != last_hash_ ||
      e.value("run_id", "") != run_id_ || event_hash(e) != e.value("hash", ""))
    throw std::runtime_error("a prepared event no longer follows " + path_.string() + " (now " +
                             std::to_string(seq_) + " events)");
  write_locked(e);
}

json EventLog::append(const std::string& type, json payload) {
  if (!payload.is_object()) payload = json{{"value", std::move(payload)}};
  // Bytes that are not UTF-8 (a run's file name, an agent's output) are replaced, in the hash as in the
  // line, so that the line written and the line verified hash alike.
  const std::string payload_text = dumped(payload);
  std::lock_guard lock(mu_);
  const std::string ts = now_utc_iso();
  EventText t = event_text(seq_ + 1, ts, run_id_, type, payload_text, last_hash_);
  json e{{"seq", seq_ + 1},
         {"ts", ts},
         {"run_id", run_id_},
         {"type", type},
         {"payload", std::move(payload)},
         {"prev_hash", last_hash_},
         {"hash", t.hash}};
  t.line += '\n';
  write_line_locked(t.line, t.hash);
  return e;
}

void EventLog::write_locked(const json& e) {
  std::string line = dumped(e) + "\n";
  write_line_locked(line, e["hash"].get<std::string>());
}

void EventLog::write_line_locked(const std::string& line, const std::string& hash) {
  if (int err = write_all(fd_, line))
    throw std::system_error(err, std::generic_category(), "append to " + path_.string());
  if (durability_ == Durability::every_event && ::fdatasync(fd_) != 0)
    throw std::system_error(errno, std::generic_category(), "fdatasync " + path_.string());
  ++seq_;
  last_hash_ = hash;
  if (durability_ == Durability::every_event) durable_ = seq_;
  if (durability_ != Durability::group) return;
  if (flush_error_ != 0)  // the disk already failed an fdatasync: say so at once rather than at the seal
    throw std::system_error(flush_error_, std::generic_category(), "fdatasync " + path_.string());
  if (!flusher_.joinable()) flusher_ = std::thread([this] { flush_loop(); });
  flush_cv_.notify_one();
}

uint64_t EventLog::count() const {
  std::lock_guard lock(mu_);
  return seq_;
}

std::string EventLog::last_hash() const {
  std::lock_guard lock(mu_);
  return last_hash_;
}

}  // namespace cp::store
