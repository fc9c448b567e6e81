#include "serve/http_server.hpp"

#include "contract/json_depth.hpp"
#include "serve/access_log.hpp"
#include "serve/api.hpp"
#include "serve/metrics.hpp"
#include "store/bundle.hpp"

#include <pistache/endpoint.h>
#include <pistache/http.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
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

// One open event stream: the events of a bundle after `last_seq`, as they are appended.
struct SseClient {
  SseClient(Http::ResponseStream&& s, fs::path b, unsigned long long after)
      : stream(std::move(s)), bundle(std::move(b)), last_seq(after) {}
  Http::ResponseStream stream;
  fs::path bundle;
  unsigned long long last_seq;
  uint64_t offset = 0;  // bytes of events.jsonl consumed (whole lines)
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
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
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto& c : clients_) {
      try {
        c->stream.ends();
      } catch (const std::exception&) {
      }
    }
    clients_.clear();
  }

 private:
  // Returns false when the client is done (run over, or the peer went away).
  static bool pump(SseClient& c) {
    std::string buf;
    int fd = ::open((c.bundle / "events.jsonl").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char chunk[65536];
      for (;;) {
        ssize_t n = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(c.offset + buf.size()));
        if (n <= 0) break;
        buf.append(chunk, static_cast<size_t>(n));
        if (buf.size() > (8u << 20)) break;  // the rest comes next tick
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
      out +=
          "id: " + std::to_string(seq) + "\nevent: " + e.value("type", "event") + "\ndata: " + line + "\n\n";
      c.last_seq = seq;
    }
    auto now = std::chrono::steady_clock::now();
    bool finished = false;
    if (out.empty()) {
      json m = store::read_json_file(c.bundle / "manifest.json");
      std::string st = m.is_object() ? m.value("status", "") : "";
      if (st == "sealed" || st == "awaiting_approval") {
        json end{{"status", st}, {"last_seq", c.last_seq}};
        if (m.contains("verdict")) end["verdict"] = m["verdict"];
        out = "event: end\ndata: " + end.dump() + "\n\n";
        finished = true;
      } else if (now - c.last_write > std::chrono::seconds(15)) {
        out = ": keep-alive\n\n";  // lets proxies and clients tell a quiet run from a dead connection
      }
    }
    if (!out.empty()) {
      c.stream.write(out.data(), static_cast<std::streamsize>(out.size()));
      c.stream.flush();  // throws when the peer has gone
      c.last_write = now;
    }
    if (finished) c.stream.ends();
    return !finished;
  }

  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      for (auto it = clients_.begin(); it != clients_.end();) {
        bool keep = false;
        try {
          keep = pump(**it);
        } catch (const std::exception&) {
          keep = false;  // the client went away
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
    response.headers().addRaw(Http::Header::Raw("X-Request-Id", rid));
    for (const auto& [k, v] : r.headers) response.headers().addRaw(Http::Header::Raw(k, v));

    if (r.sse && r.status == 200) {
      response.headers().addRaw(Http::Header::Raw("Content-Type", "text/event-stream"));
      response.headers().addRaw(Http::Header::Raw("Cache-Control", "no-cache"));
      auto stream = response.stream(Http::Code::Ok);
      auto client = std::make_unique<SseClient>(std::move(stream), r.sse->bundle, r.sse->after_seq);
      if (!hub.add(std::move(client))) r.status = 503;  // headers are gone; the stream is just dropped
    } else {
      response.headers().addRaw(Http::Header::Raw("Content-Type", r.content_type));
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
