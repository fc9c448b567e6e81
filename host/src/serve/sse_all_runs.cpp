#include "serve/sse_all_runs.hpp"

#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/runtime_paths.hpp"
#include "serve/run_catalog.hpp"
#include "serve/sse_hub.hpp"
#include "store/host_events.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// How often the followed set is re-picked from the catalogue, and how many of its newest runs are looked at
// (more than serve's largest --concurrency, so every live run is among them).
constexpr auto kScanEvery = std::chrono::milliseconds(200);
constexpr size_t kScanRuns = 300;

void scan(AllRunsWatch& w) {
  std::map<std::string, bool> wanted;  // run -> live
  for (const auto& s : w.catalog->spans_by_last_event(std::nullopt, kScanRuns)) {
    if (!s.live && s.last_ms < w.from.ts_ms) break;  // newest first: nothing further is newer
    if (!w.filter.matches_run(s)) continue;
    wanted[s.run_id] = s.live;
    auto& f = w.runs[s.run_id];
    if (f.file.empty()) f.file = s.dir / "events.jsonl";
    f.live = s.live;
  }
  if (w.filter.workflow_id.empty() &&
      (w.filter.run_id.empty() || w.filter.run_id == store::kHostEventsRunId)) {
    auto& f = w.runs[store::kHostEventsRunId];
    if (f.file.empty()) f.file = core::host_events_log(w.root);
    wanted[store::kHostEventsRunId] = true;
  }
  // A run no longer among the newest and not live is let go once read to its end (its last seq sent is
  // remembered, so picking it up again after a decision sends only what is new).
  for (auto it = w.runs.begin(); it != w.runs.end();) {
    std::error_code ec;
    auto size = fs::file_size(it->second.file, ec);
    bool read_all = ec || it->second.offset >= size;
    it = !wanted.count(it->first) && read_all ? w.runs.erase(it) : std::next(it);
  }
}

}  // namespace

void read_all_runs(AllRunsWatch& w, bool redact, std::string& out, size_t budget) {
  auto now = std::chrono::steady_clock::now();
  if (now - w.last_scan >= kScanEvery) {
    scan(w);
    w.last_scan = now;
  }
  std::vector<std::pair<FeedKey, std::string>> frames;
  size_t bytes = 0;
  for (auto& [run_id, f] : w.runs) {
    if (bytes >= budget) break;
    int fd = ::open(f.file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    std::string buf;
    char chunk[65536];
    for (;;) {
      ssize_t n = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(f.offset + buf.size()));
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
      if (buf.size() >= budget) break;
    }
    ::close(fd);
    size_t pos = 0;
    auto& last = w.sent[run_id];
    for (;;) {
      size_t nl = buf.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string_view line(buf.data() + pos, nl - pos);
      f.offset += nl - pos + 1;
      pos = nl + 1;
      if (line.empty() || !core::json_depth_ok(line)) continue;
      json e = json::parse(line, nullptr, false);
      if (!e.is_object() || !e["ts"].is_string() || !e["seq"].is_number_unsigned()) continue;
      unsigned long long seq = e["seq"].get<unsigned long long>();
      if (seq <= last) continue;
      last = seq;
      FeedKey key{core::parse_iso_ms(e["ts"].get<std::string>()), run_id, seq};
      if (!key.newer_than(w.from)) continue;
      if (!w.filter.type.empty() && e.value("type", "") != w.filter.type) continue;
      std::string frame = sse_frame(encode_feed_key(key), line, e, redact);
      bytes += frame.size();
      frames.emplace_back(std::move(key), std::move(frame));
      if (bytes >= budget) break;
    }
  }
  std::sort(frames.begin(), frames.end(),
            [](const auto& a, const auto& b) { return b.first.newer_than(a.first); });
  for (auto& [k, frame] : frames) out += frame;
}

}  // namespace cp::serve
