#include "serve/http_server.hpp"

#include "contract/json_depth.hpp"
#include "serve/access_log.hpp"
#include "serve/api.hpp"
#include "serve/metrics.hpp"
#include "store/bundle.hpp"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

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

// One open event stream: the events of a bundle after `last_seq`, as they are appended. The stream owns a
// dup() of the connection's socket and writes to it itself: Pistache's own stream writer is not safe to use
// from a thread other than its reactor's, and a socket of our own cannot be reused under us.
struct SseClient {
  int fd = -1;
  const void* peer = nullptr;  // identity only: which connection this is, for drop()
  fs::path bundle;
  unsigned long long last_seq = 0;
  uint64_t offset = 0;  // bytes of events.jsonl consumed (whole lines)
  std::string pending;  // written to the socket as it drains
  bool finishing = false;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
  ~SseClient() {
    if (fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);  // the peer sees the end even while Pistache still holds its own fd
      ::close(fd);
    }
  }
};

// Polls each stream's events.jsonl (the file is the truth, written by whichever process runs the run) and
// writes new events as SSE frames: "id: <seq>", "event: <type>", "data: <event JSON>". Ends the stream
// with an `end` event once the run is sealed and every event has been sent.
class SseHub {
 public:
  explicit SseHub(size_t max) : max_(max) {}
  ~SseHub() { stop(); }

  bool add(std::unique_ptr<SseClient> c) {
    std::lock_guard<std::mutex> l(mu_);
    if (clients_.size() >= max_) return false;
    clients_.push_back(std::move(c));
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    cv_.notify_all();
    return true;
  }
  // The connection closed: forget its stream.
  void drop(const void* peer) {
    std::lock_guard<std::mutex> l(mu_);
    clients_.remove_if([peer](const std::unique_ptr<SseClient>& c) { return c->peer == peer; });
  }
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> l(mu_);
    clients_.clear();
  }

 private:
  static constexpr size_t kMaxPending = 8u << 20;  // a client this far behind is dropped

  // Returns false when the client is done (run over and all sent, or the peer went away).
  static bool pump(SseClient& c) {
    if (!c.finishing && c.pending.size() < kMaxPending) {
      std::string buf;
      int fd = ::open((c.bundle / "events.jsonl").c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        char chunk[65536];
        for (;;) {
          ssize_t n = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(c.offset + buf.size()));
          if (n <= 0) break;
          buf.append(chunk, static_cast<size_t>(n));
          if (buf.size() > (4u << 20)) break;  // the rest comes next tick
        }
        ::close(fd);
      }
      std::string out;
      size_t pos = 0;
      for (;;) {
        size_t nl = buf.find('\n', pos);
        if (nl == std::string::npos) break;
        std::string line = buf.substr(pos, nl - pos);
        c.offset += nl - pos + 1;
        pos = nl + 1;
        if (line.empty() || !contract::json_depth_ok(line)) continue;
        json e = json::parse(line, nullptr, false);
        if (!e.is_object()) continue;
        unsigned long long seq = e.value("seq", 0ULL);
        if (seq <= c.last_seq) continue;
        out += "id: " + std::to_string(seq) + "\nevent: " + e.value("type", "event") + "\ndata: " + line +
               "\n\n";
        c.last_seq = seq;
      }
      auto now = std::chrono::steady_clock::now();
      if (out.empty()) {
        json m = store::read_json_file(c.bundle / "manifest.json");
        std::string st = m.is_object() ? m.value("status", "") : "";
        if (st == "sealed" || st == "awaiting_approval") {
          json end{{"status", st}, {"last_seq", c.last_seq}};
          if (m.contains("verdict")) end["verdict"] = m["verdict"];
          out = "event: end\ndata: " + end.dump() + "\n\n";
          c.finishing = true;
        } else if (now - c.last_write > std::chrono::seconds(15)) {
          out = ": keep-alive\n\n";  // lets proxies and clients tell a quiet run from a dead connection
        }
      }
      c.pending += out;
    }
    while (!c.pending.empty()) {
      ssize_t n = ::send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.pending.erase(0, static_cast<size_t>(n));
        c.last_write = std::chrono::steady_clock::now();
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;  // slow reader
      return false;                                                                     // the peer went away
    }
    if (c.pending.size() >= kMaxPending) return false;
    return !(c.finishing && c.pending.empty());
  }

  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      for (auto it = clients_.begin(); it != clients_.end();) {
        bool keep = false;
        try {
          keep = pump(**it);
        } catch (const std::exception&) {
          keep = false;
        }
        it = keep ? std::next(it) : clients_.erase(it);
      }
      cv_.wait_for(l, std::chrono::milliseconds(50), [this] { return stop_; });
    }
  }

  size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::unique_ptr<SseClient>> clients_;
  std::thread thread_;
  bool stop_ = false;
};

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

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
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
      ar.headers[lower(h->name())] = v.str();
    }
    for (const auto& [name, raw] : req.headers().rawList()) ar.headers[lower(name)] = raw.value();
    ar.body = req.body();

    ApiResponse r = api.handle(ar);
    std::string rid = "r-" + std::to_string(next_request.fetch_add(1));
    add_header(response, "X-Request-Id", rid);
    for (const auto& [k, v] : r.headers) add_header(response, k, v);
    // HTTP/1.1 keeps the connection unless the client said otherwise; Pistache answers "Connection:
    // Close" to any request without a Connection header, which makes clients reconnect every time.
    auto conn = ar.headers.find("connection");
    bool close = req.version() != Http::Version::Http11 ||
                 (conn != ar.headers.end() && lower(conn->second).find("close") != std::string::npos);
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
      // The head is written by the hub with the first events; the body runs until the connection closes.
      client->pending =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
          "Connection: close\r\nX-Accel-Buffering: no\r\nX-Request-Id: " +
          rid + "\r\n\r\n";
      if (client->fd < 0 || !hub.add(std::move(client))) {
        r.status = 503;
        add_header(response, "Content-Type", "application/json");
        response.send(Http::Code::Service_Unavailable,
                      R"({"error":{"code":"busy","message":"too many open event streams; retry later"}})");
      }
    } else {
      add_header(response, "Content-Type", r.content_type);
      response.send(static_cast<Http::Code>(r.status), r.body);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    metrics.record(ar.method, r.route, r.status, secs);
    if (log) log->write({rid, ar.method, ar.path, r.token_id, req.address().host(), r.status, secs * 1000.0});
  }
};

namespace {

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

 private:
  HttpServer::Impl* impl_;
};

}  // namespace

HttpServer::HttpServer(const Api& api, Metrics& metrics, AccessLog* log, HttpOptions o)
    : impl_(std::make_unique<Impl>(api, metrics, log, std::move(o))) {}

HttpServer::~HttpServer() {
  stop();
}

uint16_t HttpServer::start() {
  Address addr(impl_->o.host, Port(impl_->o.port));
  impl_->endpoint = std::make_unique<Http::Endpoint>(addr);
  auto opts = Http::Endpoint::options()
                  .threads(impl_->o.threads)
                  .flags(Tcp::Options::ReuseAddr)
                  .maxRequestSize(impl_->o.max_body)
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
