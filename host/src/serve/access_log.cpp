#include "serve/access_log.hpp"
#include "core/clock.hpp"
#include "core/runtime_paths.hpp"

#include "log/log_lanes.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace cp::serve {

namespace fs = std::filesystem;

namespace {

log::Event event_of(const AccessRecord& r) {
  log::Event e;
  e.level = r.status >= 500 ? log::Level::error : r.status >= 400 ? log::Level::warn : log::Level::info;
  e.lane = log::Lane::access;
  e.correlation_kind = "request";
  e.correlation_id = r.request_id;
  e.component = "api";
  e.message = r.method + " " + r.path + " " + std::to_string(r.status);
  e.fields = {{"method", r.method},         {"path", r.path},         {"status", r.status},
              {"latency_ms", r.latency_ms}, {"token_id", r.token_id}, {"peer", r.peer}};
  if (r.raw) e.fields["raw"] = true;
  return e;
}

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One record's line, in the bytes log::envelope() gives its event (keys sorted as nlohmann sorts them),
// put together without building the event: the lane's writer formats every request.
void append_line(std::string& out, const AccessRecord& r) {
  const char* level = r.status >= 400 ? "warn" : "info";
  const std::string path = quoted(r.path), method = quoted(r.method);
  out += "{\"component\":\"api\",\"correlation_id\":";
  out += quoted(r.request_id);
  out += ",\"correlation_kind\":\"request\",\"fields\":{\"latency_ms\":";
  out += nlohmann::json(r.latency_ms).dump();
  out += ",\"method\":";
  out += method;
  out += ",\"path\":";
  out += path;
  out += ",\"peer\":";
  out += quoted(r.peer);
  if (r.raw) out += ",\"raw\":true";
  out += ",\"status\":";
  out += std::to_string(r.status);
  out += ",\"token_id\":";
  out += quoted(r.token_id);
  out += "},\"lane\":\"access\",\"level\":\"";
  out += level;
  out += "\",\"message\":";
  out += quoted(r.method + " " + r.path + " " + std::to_string(r.status));
  out += ",\"schema\":\"log_event.v2\",\"ts\":\"";
  out += core::iso_from_ms(r.at_ms);
  out += "\"}\n";
}

}  // namespace

AccessLog::AccessLog(const fs::path& root) {
  log::open_lanes(root);
  path_ = core::logs_dir(root) / "access" / "access.jsonl";
  writer_ = std::thread([this] { drain(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

void AccessLog::write(AccessRecord r) {
  try {
    std::unique_lock lock(mu_);
    room_.wait(lock, [this] { return pending_.size() < kMaxPending || stopping_; });
    r.at_ms = core::now_ms();
    pending_.push_back(std::move(r));
    ++handed_;
    // Only the first record of a batch wakes the writer: a wake-up per request would cost a context
    // switch per request.
    if (pending_.size() > 1) return;
  } catch (const std::exception&) {
    return;  // out of memory for one record: the request is still answered
  }
  wake_.notify_one();
}

void AccessLog::flush() {
  std::unique_lock lock(mu_);
  unsigned long long want = handed_;
  ++flushing_;
  wake_.notify_one();
  room_.wait(lock, [&] { return written_ >= want; });
  --flushing_;
}

void AccessLog::drain() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, and everything is written
    // Lets a batch gather: under load, one write (and one wake-up) carries many requests' lines.
    if (!stopping_ && flushing_ == 0)
      wake_.wait_for(lock, kGather, [this] { return stopping_ || flushing_ > 0 || pending_.size() >= 4096; });
    std::deque<AccessRecord> batch;
    batch.swap(pending_);
    lock.unlock();
    room_.notify_all();
    std::string lines;
    std::vector<log::Event> errors;  // a 5xx is copied to the error lane too: emit_all() does both
    for (const auto& r : batch) {
      if (r.status >= 500)
        errors.push_back(event_of(r));
      else
        append_line(lines, r);
    }
    log::emit_lines(log::Lane::access, lines);
    log::emit_all(errors);
    lock.lock();
    written_ += batch.size();
    room_.notify_all();
  }
}

}  // namespace cp::serve
