// A run's events: a page of events.jsonl after a sequence number, or a live stream of them (SSE, served by
// http_server.cpp on its own socket).
#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "serve/api_answers.hpp"
#include "serve/event_feed.hpp"
#include "serve/routes.hpp"
#include "serve/sse_all_runs.hpp"
#include "serve/sse_hub.hpp"
#include "store/bundle.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <ext/stdio_filebuf.h>

#include <fstream>
#include <limits>
#include <regex>

namespace cp::serve {

using nlohmann::json;

namespace {

constexpr size_t kDefaultEvents = 500, kMaxEvents = 5000;
constexpr auto kAnySeq = std::numeric_limits<unsigned long long>::max();

// after_seq and limit of a page; the 400 when one is not a number.
std::optional<ApiResponse> page_bounds(const RouteCall& c, unsigned long long& after, size_t& limit) {
  if (!c.query("after_seq").empty()) {
    auto a = strict_uint(c.query("after_seq"), 0, kAnySeq);
    if (!a)
      return bad_number("after_seq", c.query("after_seq"),
                        "an event sequence number (a non-negative integer)");
    after = *a;
  }
  if (!c.query("limit").empty()) {
    // Values past the maximum are read as the maximum (and 0 as 1): a client asking for "everything"
    // gets full pages, not an error.
    auto l = strict_uint(c.query("limit"), 0, kAnySeq);
    if (!l) return bad_number("limit", c.query("limit"), "a non-negative integer");
    limit =
        static_cast<size_t>(std::min<unsigned long long>(kMaxEvents, std::max<unsigned long long>(1, *l)));
  }
  return std::nullopt;
}

ApiResponse events(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  bool raw = false;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) return *no;
  unsigned long long after = 0;
  size_t limit = kDefaultEvents;
  if (auto bad = page_bounds(c, after, limit)) return *bad;
  // Opened without following a link and without blocking: a FIFO planted as events.jsonl must not hold an
  // HTTP thread (and with two of them, the whole API).
  int fd = ::open((run->dir / "events.jsonl").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  struct stat st {};
  if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    ::close(fd);
    return error(409, "not_a_file", "the events log of run " + run->id + " is not a regular file");
  }
  __gnu_cxx::stdio_filebuf<char> buf(fd, std::ios::in);
  std::istream in(fd >= 0 ? &buf : nullptr);
  json page = json::array();
  std::string line;
  unsigned long long last = after;
  bool more = false;
  while (std::getline(in, line)) {
    if (line.empty() || !core::json_depth_ok(line)) continue;
    json e = json::parse(line, nullptr, false);
    if (!e.is_object()) continue;
    unsigned long long seq = e.value("seq", 0ULL);
    if (seq <= after) continue;
    if (page.size() == limit) {
      more = true;
      break;
    }
    page.push_back(std::move(e));
    last = seq;
  }
  json man = core::read_json_file(run->dir / "manifest.json");
  json out{{"run_id", run->id},
           {"events", std::move(page)},
           {"next_after_seq", last},
           {"more", more},
           {"run_status", man.value("status", "")}};
  if (!raw) return ok_view(std::move(out));
  ApiResponse r = ok_json(out);
  r.headers.emplace_back("X-CP-Raw", "1");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.raw = true;
  return r;
}

ApiResponse stream(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  ApiResponse r;
  auto sse = std::make_shared<SseRequest>();
  sse->bundle = run->dir;
  bool raw = false;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) return *no;
  sse->redact = !raw;
  r.raw = raw;
  std::string from = c.query("after_seq"), from_name = "after_seq";
  if (auto h = c.req.headers.find("last-event-id"); h != c.req.headers.end()) {
    from = h->second;
    from_name = "Last-Event-ID";
  }
  if (!from.empty()) {
    auto a = strict_uint(from, 0, kAnySeq);
    if (!a) return bad_number(from_name, from, "an event sequence number (a non-negative integer)");
    sse->after_seq = *a;
  }
  r.sse = sse;
  r.content_type = "text/event-stream";
  return r;
}

// The filters of the cross-run views (type, run, workflow), each checked; the 400 naming the bad one.
std::optional<ApiResponse> feed_filter(const RouteCall& c, FeedFilter& f) {
  f.type = c.query("type");
  f.run_id = c.query("run");
  f.workflow_id = c.query("workflow");
  static const std::regex type_re("[A-Za-z][A-Za-z0-9_.-]{0,127}");
  if (!f.type.empty() && !std::regex_match(f.type, type_re))
    return error(400, "bad_query", "type must be an event type such as RUNNER_STARTED",
                 {{"parameter", "type"}});
  if (!f.run_id.empty() && !store::valid_run_id(f.run_id))
    return error(400, "bad_query", "run must be a run id (or \"host\" for the host's own events)",
                 {{"parameter", "run"}});
  if (!f.workflow_id.empty() && !store::valid_run_id(f.workflow_id))
    return error(400, "bad_query", "workflow must be a workflow id (letters, digits, '.', '_', '-')",
                 {{"parameter", "workflow"}});
  return std::nullopt;
}

// A view's answer: redacted unless an admin asked raw=1.
ApiResponse view_or_raw(json out, bool raw) {
  if (!raw) return ok_view(std::move(out));
  ApiResponse r = ok_json(out);
  r.headers.emplace_back("X-CP-Raw", "1");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.raw = true;
  return r;
}

constexpr size_t kDefaultFeedPage = 100, kMaxFeedPage = 1000, kMaxReplay = 5000;

ApiResponse all_events(const ApiServices& s, const RouteCall& c) {
  FeedFilter f;
  if (auto bad = feed_filter(c, f)) return *bad;
  bool raw = false;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) return *no;
  size_t limit = kDefaultFeedPage;
  if (!c.query("limit").empty()) {
    auto l = strict_uint(c.query("limit"), 1, kMaxFeedPage);
    if (!l)
      return bad_number("limit", c.query("limit"), "an integer from 1 to " + std::to_string(kMaxFeedPage));
    limit = static_cast<size_t>(*l);
  }
  std::optional<FeedKey> before;
  if (!c.query("cursor").empty()) {
    before = decode_feed_key(c.query("cursor"));
    if (!before)
      return error(400, "bad_cursor", "cursor is not one this server gave out (next_cursor of a page)",
                   {{"parameter", "cursor"}});
  }
  FeedPage page = s.feed.newest_first(f, limit, before);
  json out{{"events", std::move(page.events)}};
  out["count"] = out["events"].size();
  out["next_cursor"] = page.next ? json(encode_feed_key(*page.next)) : json(nullptr);
  return view_or_raw(std::move(out), raw);
}

ApiResponse all_stream(const ApiServices& s, const RouteCall& c) {
  FeedFilter f;
  if (auto bad = feed_filter(c, f)) return *bad;
  bool raw = false;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) return *no;
  auto watch = std::make_shared<AllRunsWatch>();
  watch->catalog = &s.runs;
  watch->root = s.cfg.root;
  watch->filter = f;
  // From now on, or after the event a reconnecting client saw last.
  watch->from = FeedKey{core::now_ms(), "", 0};
  std::string from = c.query("after"), from_name = "after";
  if (auto h = c.req.headers.find("last-event-id"); h != c.req.headers.end()) {
    from = h->second;
    from_name = "Last-Event-ID";
  }
  auto sse = std::make_shared<SseRequest>();
  if (!from.empty()) {
    auto k = decode_feed_key(from);
    if (!k)
      return error(400, "bad_query", from_name + " is not an event id of this stream",
                   {{"parameter", from_name}});
    watch->from = *k;
    // Events of runs that ended meanwhile are sent first; live runs are followed from the resume point.
    bool more = false;
    for (auto& [key, e] : s.feed.after(f, *k, kMaxReplay, more)) {
      std::string line = e.dump(-1, ' ', false, json::error_handler_t::replace);
      sse->replay += sse_frame(encode_feed_key(key), line, e, !raw);
      watch->sent[key.run_id] = std::max(watch->sent[key.run_id], key.seq);
    }
    if (more)
      sse->replay +=
          "event: truncated\ndata: {\"message\":\"more events than a resume sends; page the rest "
          "with GET /api/events\"}\n\n";
  }
  sse->all = std::move(watch);
  sse->redact = !raw;
  ApiResponse r;
  r.raw = raw;
  r.sse = sse;
  r.content_type = "text/event-stream";
  return r;
}

}  // namespace

std::vector<Route> events_routes() {
  return {
      {{"GET", "/api/events", Role::viewer}, all_events},
      {{"GET", "/api/events/stream", Role::viewer}, all_stream},
      {{"GET", "/api/runs/{id}/events", Role::viewer}, events},
      {{"GET", "/api/runs/{id}/events/stream", Role::viewer}, stream},
  };
}

}  // namespace cp::serve
