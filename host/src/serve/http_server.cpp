#include "serve/http_server.hpp"
#include "core/ascii.hpp"
#include "core/json_file.hpp"

#include "core/json_depth.hpp"
#include "serve/access_log.hpp"
#include "serve/api.hpp"
#include "serve/metrics.hpp"
#include "serve/secret_redaction.hpp"
#include "serve/sse_hub.hpp"
#include "store/bundle.hpp"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <sstream>
#include <thread>

namespace cp::serve {

namespace fs = std::filesystem;
using namespace Pistache;
using nlohmann::json;

namespace {

// A response header with a name chosen at run time. Pistache 0.0.5 writes only typed headers (never raw
// ones) into responses, so every header we send goes through this.
class NamedHeader : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value) : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void parse(const std::string& data) override { value_ = data; }
  void write(std::ostream& os) const override { os << value_; }
#ifdef SAFE_HEADER_CAST
  uint64_t hash() const override {
    return std::hash<std::string>{}(name_);
  }
#endif

 private:
  std::string name_, value_;
};

void add_header(Http::ResponseWriter& w, const std::string& name, const std::string& value) {
  w.headers().add(std::make_shared<NamedHeader>(name, value));
}

Http::Cookie to_cookie(const SetCookie& c) {
  Http::Cookie out(c.name, c.value);
  out.path = "/api";
  out.maxAge = static_cast<int>(c.max_age);
  out.httpOnly = c.http_only;
  out.secure = c.secure;
  out.ext["SameSite"] = "Strict";
  return out;
}

}  // namespace

struct HttpServer::Impl {
  const Api& api;
  Metrics& metrics;
  AccessLog* log;
  HttpOptions o;
  std::unique_ptr<Http::Endpoint> endpoint;
  SseHub hub;
  std::atomic<unsigned long long> next_request{1};
  bool running = false;

  Impl(const Api& a, Metrics& m, AccessLog* l, HttpOptions opts)
      : api(a), metrics(m), log(l), o(std::move(opts)), hub(o.max_streams) {}

  void serve(const Http::Request& req, Http::ResponseWriter response) {
    auto t0 = std::chrono::steady_clock::now();
    ApiRequest ar;
    ar.method = Http::methodString(req.method());
    ar.path = req.resource();
    for (auto it = req.query().parameters_begin(); it != req.query().parameters_end(); ++it) {
      auto d = url_decode(it->second, true);
      ar.query[it->first] = d ? *d : it->second;
    }
    for (const auto& h : req.headers().list()) {
      std::ostringstream v;
      h->write(v);
      ar.headers[core::ascii_lower(h->name())] = v.str();
    }
    for (const auto& [name, raw] : req.headers().rawList()) ar.headers[core::ascii_lower(name)] = raw.value();
    // Pistache takes the Cookie header apart into its jar; the Api reads the header, so it is put back
    // together (every value of every name: a duplicated session cookie must stay visible).
    std::string cookies;
    for (const auto& c : req.cookies()) cookies += (cookies.empty() ? "" : "; ") + c.name + "=" + c.value;
    if (!cookies.empty()) ar.headers["cookie"] = cookies;
    ar.body = req.body();

    ApiResponse r = api.handle(ar);
    std::string rid = "r-" + std::to_string(next_request.fetch_add(1));
    add_header(response, "X-Request-Id", rid);
    for (const auto& [k, v] : r.headers) add_header(response, k, v);
    for (const auto& c : r.cookies) response.cookies().add(to_cookie(c));
    // HTTP/1.1 keeps the connection unless the client said otherwise; Pistache answers "Connection:
    // Close" to any request without a Connection header, which makes clients reconnect every time.
    auto conn = ar.headers.find("connection");
    bool close =
        req.version() != Http::Version::Http11 ||
        (conn != ar.headers.end() && core::ascii_lower(conn->second).find("close") != std::string::npos);
    if (!close) {
      response.headers().remove<Http::Header::Connection>();
      response.headers().add<Http::Header::Connection>(Http::ConnectionControl::KeepAlive);
    }

    if (r.sse && r.status == 200) {
      auto peer = response.peer();
      auto client = std::make_unique<SseClient>();
      client->fd = ::fcntl(peer->fd(), F_DUPFD_CLOEXEC, 0);
      client->peer = peer.get();
      client->bundle = r.sse->bundle;
      client->last_seq = r.sse->after_seq;
      client->redact = r.sse->redact;
      client->all = r.sse->all;
      client->live = r.sse->live;
      // The head is written by the hub with the first events; the body runs until the connection closes.
      client->pending =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
          "Connection: close\r\nX-Accel-Buffering: no\r\nX-Request-Id: " +
          rid + "\r\n";
      for (const auto& [k, v] : r.headers) client->pending += k + ": " + v + "\r\n";
      client->pending += "\r\n" + r.sse->replay;
      if (client->fd < 0 || !hub.add(std::move(client))) {
        r.status = 503;
        add_header(response, "Content-Type", "application/json");
        response.send(Http::Code::Service_Unavailable,
                      R"({"error":{"code":"busy","message":"too many open event streams; retry later"}})");
      }
    } else {
      add_header(response, "Content-Type", r.content_type);
      // A HEAD answer has no body (Pistache would send one): a client or proxy reading this connection
      // would take those bytes for the head of the next answer.
      response.send(static_cast<Http::Code>(r.status), ar.method == "HEAD" ? std::string() : r.body);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    metrics.record(ar.method, r.route, r.status, secs);
    if (log)
      log->write({rid, ar.method, ar.path, r.token_id, req.address().host(), r.status, secs * 1000.0, r.raw});
  }
};

namespace {

// The largest request head (request line and headers) accepted; a longer one is 431.
constexpr size_t kMaxHead = 64u << 10;

// Where one connection stands in its stream of requests. The server decides where each request ends
// before Pistache sees a byte of it, and hands Pistache exactly one request at a time: Pistache's parser
// forgets its buffer on an error and would read what follows (the rest of an oversized body, say) as new
// requests, reserves whatever Content-Length announces, and takes the last of conflicting lengths.
struct Framing {
  std::string head;      // a request head still arriving
  size_t body_left = 0;  // body bytes of the current request still to hand on
  bool in_body = false;
  bool closed = false;  // refused: the answer is sent, the write side shut, anything further is dropped
};
constexpr const char* kFramingKey = "cp.framing";

// A dup() of a refused connection's socket, shut for writing once the refusal is sent. The read side
// stays open so that what the client still sends is read and dropped rather than answered with a reset,
// which could destroy the refusal before the client reads it; the idle-peer timeouts close it.
struct LingeringClose {
  int fd = -1;
  explicit LingeringClose(int f) : fd(f) {}
  ~LingeringClose() {
    if (fd >= 0) ::close(fd);
  }
  void finish() const {
    if (fd >= 0) ::shutdown(fd, SHUT_WR);
  }
};

std::string trim(std::string_view v) {
  size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t");
  return a == std::string_view::npos ? std::string() : std::string(v.substr(a, b - a + 1));
}

// What the framing check makes of a complete request head.
struct Head {
  int status = 0;  // 0: acceptable; else the refusal
  std::string code, message;
  size_t content_length = 0;
  ApiRequest req;  // method, path and headers, for the check made before reading a body
};

Head check_head(std::string_view head, size_t max_body) {
  Head h;
  auto refuse = [&h](int status, const char* code, std::string message) {
    h.status = status;
    h.code = code;
    h.message = std::move(message);
    return h;
  };
  // Lines end with CRLF; a lone CR or LF is refused, since peers that split on one or the other would
  // disagree about where headers end.
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    lines.push_back(head.substr(pos, e - pos));
    pos = e + 2;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) return refuse(400, "bad_request", "empty request");
  for (auto l : lines)
    if (l.find_first_of("\r\n") != std::string_view::npos || l.find('\0') != std::string_view::npos)
      return refuse(400, "bad_request", "a request line or header holds a bare CR, LF or NUL");
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' '), sp2 = rl.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1)
    return refuse(400, "bad_request", "malformed request line");
  h.req.method = std::string(rl.substr(0, sp1));
  std::string target(rl.substr(sp1 + 1, sp2 - sp1 - 1));
  h.req.path = target.substr(0, target.find('?'));
  int lengths = 0;
  bool transfer_encoding = false;
  std::string cl;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    size_t colon = l.find(':');
    if (l.front() == ' ' || l.front() == '\t' || colon == std::string_view::npos || colon == 0)
      return refuse(400, "bad_request", "malformed header line (folded, or no name)");
    std::string name = core::ascii_lower(std::string(l.substr(0, colon)));
    if (name.find_first_of(" \t") != std::string::npos)
      return refuse(400, "bad_request", "a header name holds white space");
    std::string value = trim(l.substr(colon + 1));
    if (name == "content-length") {
      ++lengths;
      cl = value;
    }
    if (name == "transfer-encoding") transfer_encoding = true;
    h.req.headers[name] = value;
  }
  if (lengths > 1) return refuse(400, "bad_request", "more than one Content-Length header");
  if (transfer_encoding)
    return refuse(411, "length_required",
                  "Transfer-Encoding is not accepted; send the body with a Content-Length");
  if (lengths == 1) {
    if (cl.empty() || cl.find_first_not_of("0123456789") != std::string::npos)
      return refuse(400, "bad_request", "Content-Length must be a non-negative decimal integer");
    // Compared digit count first: a length past any integer type is still just too large.
    size_t digits = cl.find_first_not_of('0');
    std::string significant = digits == std::string::npos ? "0" : cl.substr(digits);
    if (significant.size() > 18 || std::stoull(significant) > max_body)
      return refuse(413, "too_large",
                    "the body would be larger than this server accepts (" + std::to_string(max_body) +
                        " bytes, --max-body)");
    h.content_length = static_cast<size_t>(std::stoull(significant));
  }
  return h;
}

std::string error_json(const std::string& code, const std::string& message) {
  return json{{"error", {{"code", code}, {"message", message}}}}.dump(-1, ' ', false,
                                                                      json::error_handler_t::replace);
}

class Handler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)
  explicit Handler(HttpServer::Impl* impl) : impl_(impl) {}
  void onRequest(const Http::Request& req, Http::ResponseWriter response) override {
    try {
      impl_->serve(req, std::move(response));
    } catch (const std::exception&) {
      // The writer was consumed or the peer vanished; nothing more can be said on this connection.
    }
  }
  void onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) override { impl_->hub.drop(peer.get()); }

  // Frames requests itself (see Framing), then hands each one to Pistache's parser as Pistache's own
  // onInput would.
  void onInput(const char* data, size_t len, const std::shared_ptr<Tcp::Peer>& peer) override {
    auto f = std::static_pointer_cast<Framing>(peer->tryGetData(kFramingKey));
    if (!f) {
      f = std::make_shared<Framing>();
      peer->putData(kFramingKey, f);
    }
    std::string carry;  // bytes after a complete head: the body and whatever follows it
    while (len > 0 && !f->closed) {
      if (f->in_body) {
        size_t n = std::min(len, f->body_left);
        f->body_left -= n;
        f->in_body = f->body_left > 0;
        auto state = pass(data, n, peer, *f);
        data += n;
        len -= n;
        // Pistache must see the request end exactly where the server framed it.
        if (state && (*state == Http::Private::State::Done) == f->in_body)
          refuse(peer, *f, 400, "bad_request", "the request body does not match its Content-Length");
        continue;
      }
      size_t searched = f->head.size() >= 3 ? f->head.size() - 3 : 0;
      f->head.append(data, len);
      len = 0;
      size_t end = f->head.find("\r\n\r\n", searched);
      if (end == std::string::npos || end + 4 > kMaxHead) {
        if (end != std::string::npos || f->head.size() > kMaxHead)
          refuse(peer, *f, 431, "header_too_large",
                 "the request line and headers are longer than " + std::to_string(kMaxHead) + " bytes");
        break;
      }
      std::string head = f->head.substr(0, end + 4);
      carry = f->head.substr(end + 4);
      f->head.clear();
      if (f->head.capacity() > 4096) f->head.shrink_to_fit();
      Head h = check_head(head, impl_->o.max_body);
      if (h.status != 0) {
        refuse(peer, *f, h.status, h.code, h.message);
        break;
      }
      if (h.content_length > 0) {
        // Refused requests are answered before their body is read: no token, no buffered body.
        if (auto r = impl_->api.refusal(h.req)) {
          std::vector<std::pair<std::string, std::string>> extra = r->headers;
          refuse(peer, *f, r->status, "", r->body, extra);
          impl_->metrics.record(h.req.method, r->route, r->status, 0.0);
          break;
        }
      }
      f->body_left = h.content_length;
      f->in_body = h.content_length > 0;
      auto state = pass(head.data(), head.size(), peer, *f);
      if (state && (*state == Http::Private::State::Done) == f->in_body)
        refuse(peer, *f, 400, "bad_request", "the request head could not be parsed");
      data = carry.data();
      len = carry.size();
    }
  }

 private:
  // Feeds bytes of one request to Pistache's parser; runs the request when it is complete. nullopt when
  // the parser refused them (the connection is then refused and closing).
  std::optional<Http::Private::State> pass(const char* data, size_t n, const std::shared_ptr<Tcp::Peer>& peer,
                                           Framing& f) {
    auto parser = getParser(peer);
    auto& request = parser->request;
    try {
      if (!parser->feed(data, n)) throw Http::HttpError(Http::Code::Request_Entity_Too_Large, "too large");
      auto state = parser->parse();
      if (state == Http::Private::State::Done) {
        Http::ResponseWriter response(request.version(), transport(), this, peer);
        request.copyAddress(peer->address());
        auto connection = request.headers().tryGet<Http::Header::Connection>();
        response.headers().add<Http::Header::Connection>(connection ? connection->control()
                                                                    : Http::ConnectionControl::Close);
        peer->setIdle(false);
        onRequest(request, std::move(response));
        parser->reset();
      }
      return state;
    } catch (const Http::HttpError& e) {
      parser->reset();
      refuse(peer, f, e.code() == 413 ? 413 : 400, e.code() == 413 ? "too_large" : "bad_request",
             "the request is not valid HTTP/1.1");
    } catch (const std::exception&) {
      parser->reset();
      refuse(peer, f, 400, "bad_request", "the request is not valid HTTP/1.1");
    }
    return std::nullopt;
  }

  // Answers `status` and closes the connection: after a refusal, where the next request would start is
  // not known (or not to be trusted), so nothing more is read as a request.
  void refuse(const std::shared_ptr<Tcp::Peer>& peer, Framing& f, int status, const std::string& code,
              const std::string& message,
              const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    if (f.closed) return;
    f.closed = true;
    f.head.clear();
    f.head.shrink_to_fit();
    f.in_body = false;
    try {
      Http::ResponseWriter w(Http::Version::Http11, transport(), this, peer);
      add_header(w, "Content-Type", "application/json");
      for (const auto& [k, v] : headers) add_header(w, k, v);
      w.headers().add<Http::Header::Connection>(Http::ConnectionControl::Close);
      auto linger = std::make_shared<LingeringClose>(::fcntl(peer->fd(), F_DUPFD_CLOEXEC, 0));
      // `code` empty: `message` is already the JSON body.
      w.send(static_cast<Http::Code>(status), code.empty() ? message : error_json(code, message))
          .then([linger](ssize_t) { linger->finish(); }, [linger](std::exception_ptr) { linger->finish(); });
    } catch (const std::exception&) {
      // The peer is gone; nothing to answer.
    }
  }

  HttpServer::Impl* impl_;
};

// Whether a resolved address is a loopback one (127.0.0.0/8, ::1, or 127/8 mapped into IPv6).
bool is_loopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return false;
}

std::string unbracket(std::string host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host;
}

}  // namespace

bool resolves_to_loopback(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(unbracket(host).c_str(), nullptr, &hints, &res) != 0 || !res) return false;
  bool all = true;
  for (addrinfo* a = res; a; a = a->ai_next) all = all && is_loopback(a->ai_addr);
  ::freeaddrinfo(res);
  return all;
}

HttpServer::HttpServer(const Api& api, Metrics& metrics, AccessLog* log, HttpOptions o)
    : impl_(std::make_unique<Impl>(api, metrics, log, std::move(o))) {}

HttpServer::~HttpServer() {
  stop();
}

uint16_t HttpServer::start() {
  // The host is resolved once, here, and the server binds that very address: whether it is loopback is
  // decided from the address, never from how the name reads (127.0.0.1.example.org need not be).
  std::string host = unbracket(impl_->o.host);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int gai = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (gai != 0 || !res)
    throw std::runtime_error("cannot listen on " + impl_->o.host + ":" + std::to_string(impl_->o.port) +
                             ": cannot resolve " + host + " (" + ::gai_strerror(gai) + ")");
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> hold(res, ::freeaddrinfo);
  IP ip(res->ai_addr);
  bool loopback = is_loopback(res->ai_addr);
  if (impl_->o.loopback_only && !loopback)
    throw std::runtime_error("--open-reads is only allowed on a loopback address; " + impl_->o.host +
                             " resolves to " + ip.toString() + ". Give readers viewer tokens instead");
  Address addr(ip, Port(impl_->o.port));
  impl_->endpoint = std::make_unique<Http::Endpoint>(addr);
  auto opts = Http::Endpoint::options()
                  .threads(impl_->o.threads)
                  .flags(Tcp::Options::ReuseAddr)
                  // The framing in Handler::onInput bounds every request to a head and a body of at most
                  // max_body; Pistache's own limit stays above that so its error path never runs.
                  .maxRequestSize(impl_->o.max_body + kMaxHead + 1024)
                  .maxResponseSize(128u << 20)
                  .headerTimeout(impl_->o.header_timeout)
                  .bodyTimeout(impl_->o.body_timeout)
                  .keepaliveTimeout(impl_->o.keepalive);
  impl_->endpoint->init(opts);
  impl_->endpoint->setHandler(Http::make_handler<Handler>(impl_.get()));
  try {
    impl_->endpoint->serveThreaded();
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + impl_->o.host + ":" + std::to_string(impl_->o.port) +
                             ": " + e.what());
  }
  impl_->running = true;
  return static_cast<uint16_t>(impl_->endpoint->getPort());
}

void HttpServer::stop() {
  if (!impl_->running) return;
  impl_->running = false;
  impl_->hub.stop();
  impl_->endpoint->shutdown();
}

}  // namespace cp::serve
