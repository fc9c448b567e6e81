// The HTTP side of `cp-host serve`: Pistache, confined to http_server.cpp. Turns each request into an
// ApiRequest, sends the ApiResponse, keeps Server-Sent Event streams open on a thread of their own, and
// writes the access log and request metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace cp::serve {

class Api;
class Metrics;
class AccessLog;

struct HttpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8787;  // 0: any free port (see start())
  int threads = 2;
  size_t max_body = 1u << 20;  // larger requests get 413 before any handler runs
  std::chrono::seconds header_timeout{10}, body_timeout{30}, keepalive{60};
  size_t max_streams = 256;  // concurrent SSE clients; more get 503
  // start() refuses an address that does not resolve to loopback (for --open-reads). The address bound is
  // the one checked: the host is resolved once.
  bool loopback_only = false;
};

// Whether `host` (a name or an address, IPv6 possibly in brackets) resolves, and only to loopback
// addresses. How the name reads does not count: 127.0.0.1.example.org may resolve anywhere.
bool resolves_to_loopback(const std::string& host);

class HttpServer {
 public:
  // api, metrics and log must outlive the server; log may be null.
  HttpServer(const Api& api, Metrics& metrics, AccessLog* log, HttpOptions o);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and serves on background threads; returns the bound port. Throws std::runtime_error when the
  // address cannot be bound.
  uint16_t start();
  // Closes every event stream and the listener; idempotent.
  void stop();

  struct Impl;  // opaque; public only so the Pistache handler in the .cpp can reach it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cp::serve
