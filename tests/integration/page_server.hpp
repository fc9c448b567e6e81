// A real HTTP/1.1 server on 127.0.0.1 for the browser tests: fixed pages by path, redirects, downloads,
// a response that never comes, and a log of every request it saw (so a test can prove a blocked origin
// was never reached, not only that a verdict said so).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cp::test {

struct PageResponse {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers (Location, Content-Disposition)
  bool hang = false;                           // accept the request and never answer
};

class PageServer {
 public:
  PageServer();  // listens on an ephemeral loopback port
  ~PageServer();
  PageServer(const PageServer&) = delete;
  PageServer& operator=(const PageServer&) = delete;

  uint16_t port() const { return port_; }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void route(const std::string& path, PageResponse r);
  // Every request target received, in order.
  std::vector<std::string> seen() const;

 private:
  void serve(int fd);
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::map<std::string, PageResponse> routes_;
  std::vector<std::string> seen_;
  std::vector<int> hanging_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace cp::test
