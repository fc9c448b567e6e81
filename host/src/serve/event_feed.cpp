#include "serve/event_feed.hpp"

#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/runtime_paths.hpp"
#include "serve/run_catalog.hpp"
#include "store/host_events.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <queue>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A run's events file larger than this is left out of the feed (and said so in the server log): reading
// it whole for one page would cost more than any page is worth. A run's own events stay readable through
// GET /api/runs/{id}/events.
constexpr uint64_t kMaxFeedFile = 64u << 20;

// Earliest a run's first event may precede its manifest's created_at (clocks are read at different moments).
constexpr long long kCreatedSlackMs = 60'000;

std::string hex(const std::string& raw) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::optional<std::string> unhex(const std::string& s) {
  if (s.size() % 2 || s.size() > 1024) return std::nullopt;
  std::string raw;
  for (size_t i = 0; i < s.size(); i += 2) {
    auto val = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = val(s[i]), lo = val(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    raw += static_cast<char>(hi * 16 + lo);
  }
  return raw;
}

// The runs a page walks, newest last event first: the catalogue's, in batches, with the host's events
// slotted in by their own last event.
class SpanWalk {
 public:
  SpanWalk(const RunCatalog& c, std::optional<RunSpan> host) : catalog_(c), host_(std::move(host)) {}
  const RunSpan* peek() {
    if (pos_ == batch_.size() && !exhausted_) fill();
    const RunSpan* run = pos_ < batch_.size() ? &batch_[pos_] : nullptr;
    if (host_ && (!run || host_->last_ms > run->last_ms)) return &*host_;
    return run;
  }
  void pop() {
    const RunSpan* p = peek();
    if (host_ && p == &*host_) {
      host_.reset();
    } else if (p) {
      ++pos_;
    }
  }

 private:
  void fill() {
    std::optional<std::pair<long long, std::string>> after;
    if (!batch_.empty()) after = std::make_pair(batch_.back().last_ms, batch_.back().run_id);
    batch_ = catalog_.spans_by_last_event(after, 256);
    pos_ = 0;
    exhausted_ = batch_.empty();
  }
  const RunCatalog& catalog_;
  std::optional<RunSpan> host_;
  std::vector<RunSpan> batch_;
  size_t pos_ = 0;
  bool exhausted_ = false;
};

fs::path events_file(const fs::path& root, const RunSpan& s) {
  return s.run_id == store::kHostEventsRunId && s.dir.empty() ? core::host_events_log(root)
                                                              : s.dir / "events.jsonl";
}

}  // namespace

std::string encode_feed_key(const FeedKey& k) {
  return hex(std::to_string(k.ts_ms) + "|" + k.run_id + "|" + std::to_string(k.seq));
}

std::optional<FeedKey> decode_feed_key(const std::string& s) {
  auto raw = unhex(s);
  if (!raw) return std::nullopt;
  auto a = raw->find('|'), b = raw->rfind('|');
  if (a == std::string::npos || a == b) return std::nullopt;
  FeedKey k;
  try {
    size_t used = 0;
    k.ts_ms = std::stoll(raw->substr(0, a), &used);
    if (used != a) return std::nullopt;
    std::string seq = raw->substr(b + 1);
    k.seq = std::stoull(seq, &used);
    if (used != seq.size() || seq.empty() || seq[0] == '-') return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  k.run_id = raw->substr(a + 1, b - a - 1);
  return k;
}

bool FeedFilter::matches_run(const RunSpan& s) const {
  if (!run_id.empty() && s.run_id != run_id) return false;
  if (!workflow_id.empty() && s.workflow_id != workflow_id) return false;
  return true;
}

RunSpan EventFeed::host_span() const {
  RunSpan s;
  s.run_id = store::kHostEventsRunId;
  s.first_ms = 0;
  s.last_ms = last_event_ms(core::host_events_log(root_));
  return s;
}

std::shared_ptr<const EventFeed::Cached> EventFeed::lines_of(const std::string& run_id, const fs::path& file,
                                                             bool& read) {
  read = false;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return nullptr;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > kMaxFeedFile) {
    ::close(fd);
    return nullptr;
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = cache_.find(run_id);
    if (it != cache_.end() && it->second.lines->size == static_cast<uint64_t>(st.st_size)) {
      lru_.splice(lru_.end(), lru_, it->second.use);
      ::close(fd);
      return it->second.lines;
    }
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::pread(fd, text.data() + got, text.size() - got, static_cast<off_t>(got));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  read = true;
  auto c = std::make_shared<Cached>();
  c->size = got;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a line still being written
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || !core::json_depth_ok(line)) continue;
    json e = json::parse(line, nullptr, false);
    if (!e.is_object() || !e["ts"].is_string() || !e["seq"].is_number_unsigned()) continue;
    Line l;
    l.key = {core::parse_iso_ms(e["ts"].get<std::string>()), run_id, e["seq"].get<unsigned long long>()};
    l.type = e.value("type", "");
    l.text = std::string(line);
    c->bytes += l.text.size() + sizeof(Line);
    c->lines.push_back(std::move(l));
  }
  // Oldest first by key, so a walk from the back is newest first even if the clock stepped back mid-run.
  std::sort(c->lines.begin(), c->lines.end(),
            [](const Line& a, const Line& b) { return b.key.newer_than(a.key); });
  std::lock_guard<std::mutex> g(mu_);
  if (auto old = cache_.find(run_id); old != cache_.end()) {
    cached_bytes_ -= old->second.lines->bytes;
    lru_.erase(old->second.use);
    cache_.erase(old);
  }
  lru_.push_back(run_id);
  cache_[run_id] = Slot{c, std::prev(lru_.end())};
  cached_bytes_ += c->bytes;
  while (cached_bytes_ > kCacheBytes && !lru_.empty()) {
    auto victim = cache_.find(lru_.front());
    cached_bytes_ -= victim->second.lines->bytes;
    cache_.erase(victim);
    lru_.pop_front();
  }
  return c;
}

FeedPage EventFeed::newest_first(const FeedFilter& f, size_t limit, const std::optional<FeedKey>& before) {
  FeedPage page;
  auto wanted = [&](const Line& l) {
    return (!before || before->newer_than(l.key)) && (f.type.empty() || l.type == f.type);
  };
  struct Cursor {
    std::shared_ptr<const Cached> c;
    size_t next;  // lines[next - 1] is the cursor's newest unread line
    const Line& top() const { return c->lines[next - 1]; }
  };
  auto older = [](const Cursor& a, const Cursor& b) { return b.top().key.newer_than(a.top().key); };
  std::priority_queue<Cursor, std::vector<Cursor>, decltype(older)> heap(older);
  auto settle = [&](Cursor cur) {
    while (cur.next > 0 && !wanted(cur.top())) --cur.next;
    if (cur.next > 0) heap.push(std::move(cur));
  };

  std::optional<RunSpan> host;
  if (f.workflow_id.empty() && (f.run_id.empty() || f.run_id == store::kHostEventsRunId)) host = host_span();
  std::optional<RunSpan> only;
  if (!f.run_id.empty() && f.run_id != store::kHostEventsRunId) only = catalog_.span(f.run_id);
  SpanWalk walk(catalog_, host);
  bool single = !f.run_id.empty();
  bool single_done = false;
  // Reads the runs whose last event is at least as new as the newest event waiting; false when the page
  // must stop here (the reading budget is spent and an unread run may hold a newer event).
  auto activate = [&]() -> bool {
    for (;;) {
      const RunSpan* s = nullptr;
      if (single) {
        if (single_done) return true;
        s = only ? &*only : (host ? &*host : nullptr);
        single_done = true;
        if (!s) return true;
      } else {
        s = walk.peek();
        if (!s) return true;
        if (!heap.empty() && s->last_ms < heap.top().top().key.ts_ms) return true;
        if (page.runs_read >= max_runs_) return false;
      }
      RunSpan span = *s;
      if (!single) walk.pop();
      if (!f.matches_run(span) && !single) continue;
      if (before && span.first_ms - kCreatedSlackMs > before->ts_ms && span.run_id != store::kHostEventsRunId)
        continue;  // every event of it is newer than the cursor
      bool read = false;
      auto lines = lines_of(span.run_id, events_file(root_, span), read);
      if (read) ++page.runs_read;
      if (lines && !lines->lines.empty()) settle(Cursor{lines, lines->lines.size()});
    }
  };
  std::optional<FeedKey> last;
  bool blocked = false;
  while (page.events.size() < limit) {
    if (!activate()) {
      blocked = true;
      break;
    }
    if (heap.empty()) break;
    Cursor cur = heap.top();
    heap.pop();
    json e = json::parse(cur.top().text, nullptr, false);
    last = cur.top().key;
    if (e.is_object()) page.events.push_back(std::move(e));
    --cur.next;
    settle(std::move(cur));
  }
  if (blocked) {
    // Go on next time from here: after the last event sent, or (none sent) from the newest unread run.
    const RunSpan* s = walk.peek();
    if (last)
      page.next = last;
    else if (s)
      page.next = FeedKey{s->last_ms, "~", std::numeric_limits<unsigned long long>::max()};
  } else if (page.events.size() == limit && last) {
    // Another page when an event is waiting, or when the reading budget stopped the look for one.
    bool looked_everywhere = activate();
    if (!looked_everywhere || !heap.empty()) page.next = last;
  }
  return page;
}

std::vector<std::pair<FeedKey, json>> EventFeed::after(const FeedFilter& f, const FeedKey& from, size_t max,
                                                       bool& more) {
  more = false;
  std::vector<const Line*> picked;
  std::vector<std::shared_ptr<const Cached>> keep;
  std::optional<RunSpan> host;
  if (f.workflow_id.empty() && (f.run_id.empty() || f.run_id == store::kHostEventsRunId)) host = host_span();
  SpanWalk walk(catalog_, host);
  size_t reads = 0;
  for (const RunSpan* s = walk.peek(); s && s->last_ms >= from.ts_ms && reads < max_runs_; s = walk.peek()) {
    RunSpan span = *s;
    walk.pop();
    if (span.live || !f.matches_run(span)) continue;
    bool read = false;
    auto lines = lines_of(span.run_id, events_file(root_, span), read);
    if (read) ++reads;
    if (!lines) continue;
    keep.push_back(lines);
    for (const auto& l : lines->lines)
      if (l.key.newer_than(from) && (f.type.empty() || l.type == f.type)) picked.push_back(&l);
  }
  std::sort(picked.begin(), picked.end(),
            [](const Line* a, const Line* b) { return b->key.newer_than(a->key); });
  if (picked.size() > max) {
    picked.resize(max);
    more = true;
  }
  std::vector<std::pair<FeedKey, json>> out;
  for (const Line* l : picked) {
    json e = json::parse(l->text, nullptr, false);
    if (e.is_object()) out.emplace_back(l->key, std::move(e));
  }
  return out;
}

long long last_event_ms(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat st {};
  std::string tail;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    off_t from = st.st_size > 4096 ? st.st_size - 4096 : 0;
    tail.resize(static_cast<size_t>(st.st_size - from));
    ssize_t n = ::pread(fd, tail.data(), tail.size(), from);
    tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  ::close(fd);
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  if (auto nl = tail.rfind('\n'); nl != std::string::npos) tail.erase(0, nl + 1);
  auto at = tail.rfind("\"ts\":\"");
  if (at == std::string::npos) return -1;
  auto end = tail.find('"', at + 6);
  if (end == std::string::npos) return -1;
  return core::parse_iso_ms(tail.substr(at + 6, end - at - 6));
}

}  // namespace cp::serve
