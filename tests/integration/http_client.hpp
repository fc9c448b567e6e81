// A small HTTP/1.1 client for the API tests: real TCP to 127.0.0.1, one connection per request
// ("Connection: close"), chunked bodies decoded; plus a Server-Sent Events reader that can hang up
// mid-stream, as a dashboard tab does.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cp::test {

// A TCP connection to 127.0.0.1:port (-1 when refused); `rcvbuf` > 0 sets a small receive buffer before
// connecting (a client that reads slowly).
int connect_loopback(uint16_t port, int rcvbuf = 0);

struct HttpResponse {
  int status = 0;                              // 0: no answer (connection refused, reset, timeout)
  std::map<std::string, std::string> headers;  // names lower-case; a repeated header's values joined by '\n'
  std::string body;
};

HttpResponse http(uint16_t port, const std::string& method, const std::string& target,
                  const std::map<std::string, std::string>& headers = {}, const std::string& body = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

struct SseEvent {
  std::string id, event, data;
};

// Opens GET `target` and collects events until `max_events` arrived, an `end` event arrived, or
// `timeout` passed; then closes the connection. status is the HTTP status of the response.
struct SseResult {
  int status = 0;
  std::string content_type;
  std::vector<SseEvent> events;
  bool ended = false;  // an `end` event was received
};
SseResult read_sse(uint16_t port, const std::string& target,
                   const std::map<std::string, std::string>& headers, size_t max_events,
                   std::chrono::milliseconds timeout);

}  // namespace cp::test
