// A run's events: a page of events.jsonl after a sequence number, or a live stream of them (SSE, served by
// http_server.cpp on its own socket).
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

#include <algorithm>
#include <fstream>
#include <limits>

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
  std::ifstream in(run->dir / "events.jsonl");
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

}  // namespace

std::vector<Route> events_routes() {
  return {
      {{"GET", "/api/runs/{id}/events", Role::viewer}, events},
      {{"GET", "/api/runs/{id}/events/stream", Role::viewer}, stream},
  };
}

}  // namespace cp::serve
