// `cp-host serve` against hostile clients, over raw sockets where a client library would tidy the request:
// request framing (oversized bodies, conflicting lengths, bodies before authentication), forged SSE
// fields, streams that never read, the loopback rule of --open-reads, read-only GETs, strict query values.
#include "integration/serve_fixture.hpp"
#include "store/bundle_seal.hpp"
#include "store/event_log.hpp"
#include "store/host_key.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>

namespace cp::test {
namespace {

// Sends what it can of `data` (the server may stop reading); returns bytes sent.
size_t send_some(int fd, const std::string& data) {
  size_t at = 0;
  while (at < data.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    ssize_t n = ::send(fd, data.data() + at, data.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;
    at += static_cast<size_t>(n);
  }
  return at;
}

struct RawAnswer {
  std::string bytes;
  bool eof = false;  // the server closed (FIN or reset), as opposed to the wait running out
};

RawAnswer read_until_close(int fd, std::chrono::milliseconds timeout) {
  RawAnswer r;
  auto end = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      r.eof = true;
      break;
    }
    r.bytes.append(buf, static_cast<size_t>(n));
  }
  return r;
}

size_t count_responses(const std::string& bytes) {
  size_t n = 0;
  for (size_t at = bytes.find("HTTP/1.1 "); at != std::string::npos; at = bytes.find("HTTP/1.1 ", at + 1))
    ++n;
  return n;
}

int status_of(const std::string& bytes) {
  return bytes.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(bytes.c_str() + 9) : 0;
}

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// A sealed-looking bundle written the way a run writes one: manifest plus a hash-chained event log.
fs::path make_bundle(const RunProject& p, const std::string& id, const std::string& status,
                     const std::string& verdict) {
  fs::path dir = p.dir / ".runtime-cache/cortexpilot/runs" / id;
  fs::create_directories(dir / "reports");
  json m{{"run_id", id}, {"status", status}, {"task_id", "t"}, {"created_at", "2026-11-25T10:00:00.000Z"}};
  if (!verdict.empty()) m["verdict"] = verdict;
  std::ofstream(dir / "manifest.json") << m.dump();
  return dir;
}

struct Hardened : ::testing::Test {
  RunProject p;
  std::string viewer, op;
  std::unique_ptr<ServeProcess> serve;
  void start(std::vector<std::string> extra = {}) {
    viewer = add_token(p, "dash", "viewer");
    op = add_token(p, "ops", "operator");
    std::vector<std::string> args{
        "--tokens",      (p.dir / "tokens.json").string(), "--repo", p.repo.string(), "--max-body", "65536",
        "--no-scheduler"};
    args.insert(args.end(), extra.begin(), extra.end());
    // Under AddressSanitizer freed blocks wait in a quarantine (256 MiB by default) and stay resident; a
    // small one keeps the memory bounds about serve's live memory. No effect on the normal build.
    const char* asan = std::getenv("ASAN_OPTIONS");
    serve = std::make_unique<ServeProcess>(
        p, args,
        std::vector<std::string>{std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") +
                                 "quarantine_size_mb=4"});
    ASSERT_NE(serve->port(), 0) << serve->output();
  }
  RawAnswer exchange(const std::string& request,
                     std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    int fd = connect_loopback(serve->port());
    EXPECT_GE(fd, 0);
    send_some(fd, request);
    auto r = read_until_close(fd, timeout);
    ::close(fd);
    return r;
  }
  // The raw request for a run's live event stream, as the viewer.
  std::string stream_request(const std::string& id) const {
    return "GET /api/runs/" + id + "/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           viewer + "\r\n\r\n";
  }
};

TEST_F(Hardened, AfterA413NothingElseOnTheConnectionIsARequest) {
  start();
  // One request whose oversized body is made of further requests: one answer (413), then the close.
  std::string pipelined;
  for (int i = 0; i < 7; ++i) pipelined += "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  std::string body = pipelined + std::string(100000 - pipelined.size() * 2, 'x') + pipelined;
  auto r = exchange("POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + op +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body);
  EXPECT_TRUE(r.eof) << "the server kept the connection open after a 413";
  EXPECT_EQ(count_responses(r.bytes), 1u) << r.bytes;
  EXPECT_EQ(status_of(r.bytes), 413) << r.bytes;

  // Well-framed pipelined requests are all answered, in order.
  int fd = connect_loopback(serve->port());
  send_some(fd, pipelined + "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  auto ok = read_until_close(fd, std::chrono::seconds(15));
  ::close(fd);
  EXPECT_EQ(count_responses(ok.bytes), 8u) << ok.bytes;
}

TEST_F(Hardened, ContentLengthIsFramedStrictly) {
  start();
  auto post = [&](const std::string& length_headers, const std::string& body = "{}") {
    return exchange("POST /api/intake/preview HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + op +
                    "\r\n" + length_headers + "\r\n" + body);
  };
  struct Case {
    std::string headers;
    int want;
  } cases[] = {
      {"Content-Length: 2\r\nContent-Length: 3\r\n", 400},  // conflicting
      {"Content-Length: 2\r\nContent-Length: 2\r\n", 400},  // duplicate
      {"Content-Length: 2, 2\r\n", 400},
      {"Content-Length: -1\r\n", 400},
      {"Content-Length: +2\r\n", 400},
      {"Content-Length: 2abc\r\n", 400},
      {"Content-Length:\r\n", 400},
      {"Content-Length: 99999999999999999999999999\r\n", 413},
      {"Content-Length: 18446744073709551616\r\n", 413},
      {"Content-Length: 9223372036854775807\r\n", 413},
      {"Content-Length: 4294967296\r\n", 413},
      {"Transfer-Encoding: chunked\r\n", 411},
      {"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", 411},
  };
  for (const auto& c : cases) {
    auto r = post(c.headers);
    EXPECT_EQ(status_of(r.bytes), c.want) << c.headers << "\n" << r.bytes;
    EXPECT_EQ(count_responses(r.bytes), 1u) << c.headers << "\n" << r.bytes;
    EXPECT_TRUE(r.eof) << c.headers;
    EXPECT_EQ(r.bytes.find("std::"), std::string::npos) << r.bytes;
    EXPECT_EQ(r.bytes.find("basic_string"), std::string::npos) << r.bytes;
  }
  // A header line with a bare LF is refused too.
  auto bare = exchange("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\nX-A: b\r\n\r\n");
  EXPECT_EQ(status_of(bare.bytes), 400) << bare.bytes;
  // The server is still answering.
  EXPECT_EQ(http(serve->port(), "GET", "/api/health").status, 200);
}

TEST_F(Hardened, BodiesAreNotHeldForClientsWithoutAToken) {
  start();
  long before = rss_kb(serve->pid());
  ASSERT_GT(before, 0);
  // A declared 4 GB body: 413 at once, whatever is sent after; a body within --max-body but without a
  // token: 401 before a byte of it is read.
  std::vector<int> fds;
  std::string chunk(1 << 20, 'x');
  for (int i = 0; i < 16; ++i) {
    int fd = connect_loopback(serve->port());
    ASSERT_GE(fd, 0);
    send_some(fd, "POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4294967296\r\n\r\n");
    send_some(fd, chunk);
    fds.push_back(fd);
  }
  for (int fd : fds) {
    auto r = read_until_close(fd, std::chrono::seconds(15));
    EXPECT_EQ(status_of(r.bytes), 413) << r.bytes;
    ::close(fd);
  }
  fds.clear();
  for (int i = 0; i < 32; ++i) {
    int fd = connect_loopback(serve->port());
    ASSERT_GE(fd, 0);
    send_some(fd, "POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60000\r\n\r\n");
    fds.push_back(fd);  // the body never comes
  }
  for (int fd : fds) {
    auto r = read_until_close(fd, std::chrono::seconds(5));
    EXPECT_EQ(status_of(r.bytes), 401) << r.bytes;
    EXPECT_TRUE(r.eof);
    ::close(fd);
  }
  // A bad token is the same 401, also before the body.
  int fd = connect_loopback(serve->port());
  send_some(fd,
            "POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer nope\r\nContent-Length: "
            "60000\r\n\r\n");
  auto r = read_until_close(fd, std::chrono::seconds(5));
  ::close(fd);
  EXPECT_EQ(status_of(r.bytes), 401) << r.bytes;
  long after = rss_kb(serve->pid());
  EXPECT_LT(after - before, 64 * 1024) << "serve grew from " << before << " kB to " << after << " kB";
  EXPECT_EQ(http(serve->port(), "GET", "/api/health").status, 200);
}

TEST_F(Hardened, EventTypesCannotForgeSseFields) {
  std::string id = "20261125T100000Z-forged";
  fs::path dir = make_bundle(p, id, "sealed", "denied");
  {
    store::EventLog log(dir / "events.jsonl", id);
    log.append("RUN_STARTED", json::object());
    log.append("X\nevent: end\ndata: {\"status\":\"sealed\",\"verdict\":\"success\"}\n\nevent: Y",
               json::object());
    log.append("X\revent: end\rdata: {\"verdict\":\"success\"}\r\rid: 999", json::object());
    log.append("X\r\nevent: end\r\n", json::object());
    log.append("RUN_SEALED", json{{"note", "line\nbreak\rand\r\nmore"}});
  }
  ASSERT_TRUE(store::verify_event_log(dir / "events.jsonl").ok);
  start();
  auto r = exchange(stream_request(id), std::chrono::seconds(20));
  ASSERT_TRUE(r.eof) << r.bytes;
  std::string body = r.bytes.substr(r.bytes.find("\r\n\r\n") + 4);
  // SSE ends a line at CR, LF or CRLF: split the way a browser does.
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\r' || c == '\n') {
      lines.push_back(cur);
      cur.clear();
      if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
    } else {
      cur += c;
    }
  }
  size_t ends = 0, ids = 0;
  for (const auto& l : lines) {
    if (l == "event: end") ++ends;
    if (l.rfind("id:", 0) == 0) ++ids;
    // Every line is a field of the server's own making; no fragment of an event type stands alone.
    EXPECT_TRUE(l.empty() || l.rfind("id: ", 0) == 0 || l.rfind("event: ", 0) == 0 ||
                l.rfind("data: {", 0) == 0)
        << l;
    if (l.rfind("data: ", 0) == 0) {
      json d = json::parse(l.substr(6), nullptr, false);
      ASSERT_TRUE(d.is_object()) << l;
      if (d.contains("verdict")) {
        EXPECT_EQ(d["verdict"], "denied") << l;
      }
    }
  }
  EXPECT_EQ(ends, 1u) << body;
  EXPECT_EQ(ids, 5u) << body;
  EXPECT_NE(body.find("\"verdict\":\"denied\""), std::string::npos) << body;
  // The client library sees the five events and the one real end.
  auto sse = read_sse(serve->port(), "/api/runs/" + id + "/events/stream", bearer(viewer), 100,
                      std::chrono::seconds(10));
  EXPECT_TRUE(sse.ended);
  ASSERT_EQ(sse.events.size(), 5u);
  EXPECT_EQ(sse.events[1].event, "event");
  EXPECT_EQ(json::parse(sse.events[1].data)["type"].get<std::string>().substr(0, 2), "X\n");
}

TEST_F(Hardened, AJsonLineWithACarriageReturnIsSentReserialised) {
  std::string id = "20261125T100000Z-crlf";
  fs::path dir = make_bundle(p, id, "sealed", "denied");
  // JSON allows CR between tokens; this line is not part of a valid chain, but the stream must still not
  // let it break a frame.
  std::ofstream(dir / "events.jsonl") << "{\"seq\":1,\r\"type\":\"A\",\r\"x\":1}\n";
  start();
  auto r = exchange(stream_request(id), std::chrono::seconds(20));
  std::string body = r.bytes.substr(r.bytes.find("\r\n\r\n") + 4);
  EXPECT_EQ(body.find('\r'), std::string::npos) << body;
  EXPECT_NE(body.find("event: A\n"), std::string::npos) << body;
}

TEST_F(Hardened, StreamsThatNeverReadAreBounded) {
  std::string id = "20261125T100000Z-big";
  fs::path dir = make_bundle(p, id, "running", "");
  {
    store::EventLog log(dir / "events.jsonl", id, store::EventLog::Durability::none);
    std::string pad(400, 'p');
    for (int i = 0; i < 20000; ++i) log.append("TOOL_OUTPUT", json{{"i", i}, {"pad", pad}});
  }
  start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  long before = rss_kb(serve->pid());
  ASSERT_GT(before, 0);
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) {
    int fd = connect_loopback(serve->port(), 4096);
    ASSERT_GE(fd, 0);
    send_some(fd, stream_request(id));
    fds.push_back(fd);  // never read
  }
  std::this_thread::sleep_for(std::chrono::seconds(4));
  auto t0 = std::chrono::steady_clock::now();
  auto h = http(serve->port(), "GET", "/api/health", {}, {}, std::chrono::seconds(20));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(h.status, 200);
  EXPECT_LT(took, std::chrono::seconds(5));
  long after = rss_kb(serve->pid());
  EXPECT_LT(after - before, 300 * 1024) << "serve grew from " << before << " kB to " << after << " kB";
  for (int fd : fds) ::close(fd);
  // One reader that does read gets every event.
  auto sse = read_sse(serve->port(), "/api/runs/" + id + "/events/stream", bearer(viewer), 20000,
                      std::chrono::seconds(60));
  EXPECT_EQ(sse.events.size(), 20000u);
}

TEST_F(Hardened, CompareByAViewerWritesNothing) {
  std::string a = "20261125T100000Z-a", b = "20261125T100001Z-b";
  for (const auto& id : {a, b}) {
    fs::path dir = make_bundle(p, id, "sealed", "success");
    store::EventLog log(dir / "events.jsonl", id);
    log.append("RUN_STARTED", json::object());
    // Sealed with the host key serve trusts: compare verifies both bundles before it reads them.
    store::write_seal(dir, log, "RUN_SEALED", {{"status", "sealed"}, {"verdict", "success"}, {"reason", ""}},
                      json::parse(read_file(dir / "manifest.json")), *store::HostKey::current());
  }
  start();
  auto listing = [&](const std::string& id) {
    std::map<std::string, long long> out;
    for (const auto& e : fs::recursive_directory_iterator(p.dir / ".runtime-cache/cortexpilot/runs" / id)) {
      struct stat st {};
      ::lstat(e.path().c_str(), &st);
      out[e.path().string()] = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    }
    return out;
  };
  auto before_a = listing(a), before_b = listing(b);
  auto r = http(serve->port(), "GET", "/api/runs/" + a + "/compare/" + b, bearer(viewer));
  EXPECT_EQ(r.status, 200) << r.body;
  // Asking it to write is not a parameter the route takes: refused, not quietly ignored.
  r = http(serve->port(), "GET", "/api/runs/" + a + "/compare/" + b + "?write=true", bearer(viewer));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(listing(a), before_a);
  EXPECT_EQ(listing(b), before_b);
}

TEST_F(Hardened, NumericQueryValuesAreStrict) {
  std::string id = "20261125T100000Z-q";
  fs::path dir = make_bundle(p, id, "sealed", "success");
  {
    store::EventLog log(dir / "events.jsonl", id);
    log.append("RUN_STARTED", json::object());
  }
  start();
  struct Case {
    std::string target, param;
  } cases[] = {
      {"/api/runs?limit=5abc", "limit"},
      {"/api/runs?limit=-5", "limit"},
      {"/api/runs?limit=%205", "limit"},
      {"/api/runs?limit=0x10", "limit"},
      {"/api/runs?limit=0", "limit"},
      {"/api/runs/" + id + "/events?limit=5abc", "limit"},
      {"/api/runs/" + id + "/events?after_seq=1e3", "after_seq"},
      {"/api/runs/" + id + "/events?after_seq=99999999999999999999999", "after_seq"},
      {"/api/runs/" + id + "/events/stream?after_seq=2x", "after_seq"},
  };
  for (const auto& c : cases) {
    auto r = http(serve->port(), "GET", c.target, bearer(viewer));
    EXPECT_EQ(r.status, 400) << c.target << " " << r.body;
    json e = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(e.is_object()) << r.body;
    EXPECT_EQ(e["error"]["code"], "bad_query") << r.body;
    EXPECT_EQ(e["error"]["details"]["parameter"], c.param) << r.body;
    EXPECT_NE(e["error"]["message"].get<std::string>().find(c.param), std::string::npos) << r.body;
  }
  auto h = bearer(viewer);
  h["Last-Event-ID"] = "1;";
  auto r = http(serve->port(), "GET", "/api/runs/" + id + "/events/stream", h);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(http(serve->port(), "GET", "/api/runs?limit=5", bearer(viewer)).status, 200);
  EXPECT_EQ(
      http(serve->port(), "GET", "/api/runs/" + id + "/events?after_seq=0&limit=10", bearer(viewer)).status,
      200);
}

// A HEAD answer carries no body: on a kept connection the next answer must start where the head ends, or a
// client (or a proxy in front of serve) would read the body as the next answer's head.
TEST_F(Hardened, HeadAnswersHaveNoBody) {
  start();
  int fd = connect_loopback(serve->port());
  ASSERT_GE(fd, 0);
  send_some(fd,
            "HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            "HEAD /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  // Read until the GET's answer is whole (serve may keep the connection despite "close").
  RawAnswer r;
  for (int idle = 0; r.bytes.find("\"status\":\"ok\"}") == std::string::npos && idle < 30;) {
    auto more = read_until_close(fd, std::chrono::seconds(1));
    r.bytes += more.bytes;
    if (more.eof) break;
    if (more.bytes.empty()) ++idle;  // a bound for a broken build
  }
  ::close(fd);
  EXPECT_EQ(count_responses(r.bytes), 3u) << r.bytes;
  EXPECT_EQ(r.bytes.find("<html"), std::string::npos) << "the dashboard page went out on a HEAD:\n"
                                                      << r.bytes;
  // Each answer begins right after the blank line that ends the one before.
  size_t first = r.bytes.find("\r\n\r\n"), second = r.bytes.find("\r\n\r\n", first + 4);
  ASSERT_NE(second, std::string::npos) << r.bytes;
  EXPECT_EQ(r.bytes.compare(first + 4, 9, "HTTP/1.1 "), 0) << r.bytes;
  EXPECT_EQ(r.bytes.compare(second + 4, 9, "HTTP/1.1 "), 0) << r.bytes;
  EXPECT_NE(r.bytes.find("\"status\":\"ok\""), std::string::npos) << "the GET's body is there: " << r.bytes;
}

// A run writes its artifacts and reports; none of them, nor any other answer of the API, may be sniffed as
// another type (a page of this origin loading one as a script), framed, or run anything when opened.
TEST_F(Hardened, ApiAnswersAreNeverSniffedFramedOrScripted) {
  std::string id = "20261125T100000Z-x";
  fs::path dir = make_bundle(p, id, "sealed", "success");
  cp::test::write_file(dir / "artifacts/page.html", "<script>parent.document.title='ran'</script>");
  cp::test::write_file(dir / "artifacts/code.txt", "document.title='ran'");
  cp::test::write_file(dir / "reports/gate_x.json", R"({"verdict":"pass"})");
  start();
  auto locked = [](const HttpResponse& r, const std::string& what) {
    EXPECT_EQ(r.headers.count("x-content-type-options") ? r.headers.at("x-content-type-options") : "",
              "nosniff")
        << what;
    std::string csp =
        r.headers.count("content-security-policy") ? r.headers.at("content-security-policy") : "";
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << what << ": " << csp;
    EXPECT_NE(csp.find("sandbox"), std::string::npos) << what << ": " << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << what << ": " << csp;
  };
  for (std::string file : {"page.html", "code.txt"}) {
    auto r = http(serve->port(), "GET", "/api/runs/" + id + "/artifacts/" + file, bearer(viewer));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["content-type"].find("text/html"), std::string::npos) << file;
    locked(r, file);
  }
  locked(http(serve->port(), "GET", "/api/runs/" + id + "/reports/gate_x", bearer(viewer)), "a report");
  locked(http(serve->port(), "GET", "/api/runs/" + id + "/artifacts/none.html", bearer(viewer)), "a 404");
  locked(http(serve->port(), "GET", "/api/runs"), "a 401");
  locked(http(serve->port(), "GET", "/api/nowhere"), "an unknown route");
  locked(http(serve->port(), "GET", "/api/health"), "an open route");
  // The dashboard's own files keep their policy (scripts of this origin only), errors included.
  auto page = http(serve->port(), "GET", "/runs/" + id);
  EXPECT_NE(page.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page.headers["x-frame-options"], "DENY");
  auto missing = http(serve->port(), "GET", "/assets/none.js");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers["x-content-type-options"], "nosniff");
}

bool resolves_only_to_loopback(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  bool all = ::getaddrinfo(name.c_str(), nullptr, &hints, &res) == 0 && res;
  for (addrinfo* a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET)
      all = all && (ntohl(reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    else if (a->ai_family == AF_INET6)
      all = all && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    else
      all = false;
  }
  if (res) ::freeaddrinfo(res);
  return all;
}

TEST(ServeHardening, OpenReadsFollowsTheResolvedAddress) {
  RunProject p;
  // Names that read like loopback decide nothing: what they resolve to does. The machine's own name
  // usually resolves to a routable address.
  char hn[256] = {};
  ::gethostname(hn, sizeof hn - 1);
  for (std::string name : {std::string("127.0.0.1.nip.io"), std::string("127.0.0.1.invalid"),
                           std::string("localhost.invalid"), std::string("0.0.0.0"), std::string(hn)}) {
    if (name.empty() || resolves_only_to_loopback(name)) continue;  // really loopback here: serve may listen
    Ran refused = host({"--root", p.dir.path().string(), "serve", "--listen", name + ":0", "--open-reads"});
    EXPECT_EQ(refused.exit_code, 2) << name << ": " << refused.err;
    EXPECT_NE(refused.err.find("loopback"), std::string::npos) << refused.err;
  }
}

}  // namespace
}  // namespace cp::test
