#include "integration/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

namespace cp::test {

int connect_loopback(uint16_t port, int rcvbuf) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

namespace {

using Clock = std::chrono::steady_clock;

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads what is available within the deadline; false on EOF/error/timeout with nothing read.
bool read_some(int fd, std::string& buf, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  char tmp[65536];
  ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string request_text(const std::string& method, const std::string& target,
                         const std::map<std::string, std::string>& headers, const std::string& body,
                         uint16_t port, bool close) {
  std::string r = method + " " + target + " HTTP/1.1\r\n";
  // A Host the caller gives replaces the default (a request names one host).
  if (!headers.count("Host")) r += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& [k, v] : headers) r += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n" + body;
  return r;
}

// Splits "status line + headers" off buf; returns the header end or npos.
size_t parse_head(const std::string& buf, int& status, std::map<std::string, std::string>& headers) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return end;
  size_t sp = buf.find(' ');
  status = std::atoi(buf.c_str() + sp + 1);
  size_t pos = buf.find("\r\n") + 2;
  while (pos < end) {
    size_t nl = buf.find("\r\n", pos);
    std::string line = buf.substr(pos, nl - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      // A repeated header (Set-Cookie) keeps every value, one per line.
      std::string& slot = headers[lower(line.substr(0, colon))];
      slot += (slot.empty() ? "" : "\n") + v;
    }
    pos = nl + 2;
  }
  return end + 4;
}

// Decodes as much of a chunked body as is complete; returns false when more bytes are needed.
bool dechunk(std::string& raw, std::string& out, bool& done) {
  for (;;) {
    size_t nl = raw.find("\r\n");
    if (nl == std::string::npos) return false;
    size_t size = std::stoul(raw.substr(0, nl), nullptr, 16);
    if (size == 0) {
      done = true;
      return true;
    }
    if (raw.size() < nl + 2 + size + 2) return false;
    out += raw.substr(nl + 2, size);
    raw.erase(0, nl + 2 + size + 2);
  }
}

}  // namespace

HttpResponse http(uint16_t port, const std::string& method, const std::string& target,
                  const std::map<std::string, std::string>& headers, const std::string& body,
                  std::chrono::milliseconds timeout) {
  HttpResponse res;
  int fd = connect_loopback(port);
  if (fd < 0) return res;
  auto deadline = Clock::now() + timeout;
  if (!send_all(fd, request_text(method, target, headers, body, port, true))) {
    // The server may answer (413) and close before the whole body is sent; read what it said.
  }
  std::string buf;
  // Until the body is complete (Content-Length or the last chunk), or the server closes.
  while (read_some(fd, buf, deadline)) {
    int st = 0;
    std::map<std::string, std::string> h;
    size_t at = parse_head(buf, st, h);
    if (at == std::string::npos) continue;
    if (h.count("content-length") && buf.size() - at >= std::stoul(h["content-length"])) break;
    if (lower(h["transfer-encoding"]) == "chunked" && buf.find("\r\n0\r\n\r\n", at - 2) != std::string::npos)
      break;
  }
  ::close(fd);
  size_t body_at = parse_head(buf, res.status, res.headers);
  if (body_at == std::string::npos) {
    res.status = 0;
    return res;
  }
  std::string raw = buf.substr(body_at);
  if (lower(res.headers["transfer-encoding"]) == "chunked") {
    bool done = false;
    dechunk(raw, res.body, done);
  } else {
    res.body =
        res.headers.count("content-length") ? raw.substr(0, std::stoul(res.headers["content-length"])) : raw;
  }
  return res;
}

SseResult read_sse(uint16_t port, const std::string& target,
                   const std::map<std::string, std::string>& headers, size_t max_events,
                   std::chrono::milliseconds timeout) {
  SseResult res;
  int fd = connect_loopback(port);
  if (fd < 0) return res;
  auto deadline = Clock::now() + timeout;
  send_all(fd, request_text("GET", target, headers, "", port, false));
  std::string buf, raw, text;
  std::map<std::string, std::string> h;
  size_t body_at = std::string::npos;
  bool chunked = false, done = false;
  while (!done && res.events.size() < max_events && !res.ended && read_some(fd, buf, deadline)) {
    if (body_at == std::string::npos) {
      body_at = parse_head(buf, res.status, h);
      if (body_at == std::string::npos) continue;
      res.content_type = h["content-type"];
      chunked = lower(h["transfer-encoding"]) == "chunked";
      raw = buf.substr(body_at);
    } else {
      raw += buf;
    }
    buf.clear();
    if (chunked)
      dechunk(raw, text, done);
    else
      text += std::move(raw), raw.clear();
    // Frames end with a blank line.
    for (;;) {
      size_t end = text.find("\n\n");
      if (end == std::string::npos) break;
      std::string frame = text.substr(0, end);
      text.erase(0, end + 2);
      SseEvent ev;
      size_t pos = 0;
      bool any = false;
      while (pos <= frame.size()) {
        size_t nl = frame.find('\n', pos);
        if (nl == std::string::npos) nl = frame.size();
        std::string line = frame.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.rfind("id: ", 0) == 0) ev.id = line.substr(4), any = true;
        if (line.rfind("event: ", 0) == 0) ev.event = line.substr(7), any = true;
        if (line.rfind("data: ", 0) == 0) ev.data = line.substr(6), any = true;
      }
      if (!any) continue;  // a comment (keep-alive)
      if (ev.event == "end") {
        res.ended = true;
        break;
      }
      res.events.push_back(ev);
      if (res.events.size() >= max_events) break;
    }
  }
  ::close(fd);  // hang up, as a closed browser tab would
  return res;
}

}  // namespace cp::test
