#include "cli/remote_client.hpp"

#include "core/json_depth.hpp"
#include "core/version.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <cctype>

namespace cp::cli {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr uint64_t kMaxAnswerBytes = 64u << 20;
constexpr int kBudgetSeconds = 30;

// Synchronous Beast calls take no deadline: the socket's own send and receive timeouts bound each call.
void set_timeouts(int fd) {
  timeval tv{kBudgetSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

http::request<http::string_body> make_request(const RemoteServer& s, const std::string& method,
                                              const std::string& target, const std::string& body) {
  http::request<http::string_body> req{http::string_to_verb(method), s.base + target, 11};
  const bool default_port =
      (s.scheme == "http" && s.port == "80") || (s.scheme == "https" && s.port == "443");
  req.set(http::field::host, default_port ? s.host : s.host + ":" + s.port);
  req.set(http::field::user_agent, std::string("cp-host/") + CP_HOST_VERSION);
  req.set(http::field::accept, "application/json");
  if (!s.token.empty()) req.set(http::field::authorization, "Bearer " + s.token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  return req;
}

template <class Stream>
HttpAnswer exchange(Stream& stream, const http::request<http::string_body>& req) {
  HttpAnswer a;
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  parser.header_limit(64 * 1024);
  http::read(stream, buffer, parser);
  a.status = static_cast<int>(parser.get().result_int());
  a.body = std::move(parser.get().body());
  return a;
}

}  // namespace

std::optional<RemoteServer> parse_server_url(const std::string& url, std::string& error) {
  RemoteServer s;
  s.url = url;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    s.scheme = "http";
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    s.scheme = "https";
    rest = url.substr(8);
  } else {
    error = "'" + url + "' is not an http:// or https:// URL (for example http://127.0.0.1:8787)";
    return std::nullopt;
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  s.base = slash == std::string::npos ? "" : rest.substr(slash);
  while (!s.base.empty() && s.base.back() == '/') s.base.pop_back();
  if (authority.find('@') != std::string::npos) {
    error = "'" + url + "' carries credentials; give the token with CP_HOST_TOKEN or --token-file instead";
    return std::nullopt;
  }
  if (!authority.empty() && authority[0] == '[') {  // [::1]:8787
    const size_t close = authority.find(']');
    if (close == std::string::npos) {
      error = "'" + url + "': an IPv6 address needs its closing ']'";
      return std::nullopt;
    }
    s.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') s.port = authority.substr(close + 2);
  } else {
    const size_t colon = authority.rfind(':');
    s.host = authority.substr(0, colon);
    if (colon != std::string::npos) s.port = authority.substr(colon + 1);
  }
  if (s.port.empty()) s.port = s.scheme == "https" ? "443" : "80";
  bool port_ok = !s.port.empty() && s.port.size() <= 5;
  for (char c : s.port) port_ok = port_ok && std::isdigit(static_cast<unsigned char>(c));
  if (s.host.empty() || !port_ok) {
    error = "'" + url + "' has no host, or a port that is not a number";
    return std::nullopt;
  }
  for (char c : s.host + s.base)
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      error = "'" + url + "' holds a space or a control character";
      return std::nullopt;
    }
  return s;
}

nlohmann::json HttpAnswer::json() const {
  if (!core::json_depth_ok(body)) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(body, nullptr, false);
}

std::string HttpAnswer::message() const {
  if (status == 0) return error;
  const nlohmann::json j = json();
  if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
      j["error"]["message"].is_string())
    return j["error"]["message"].get<std::string>() + " (HTTP " + std::to_string(status) + ")";
  return "the server answered HTTP " + std::to_string(status);
}

HttpAnswer http_call(const RemoteServer& s, const std::string& method, const std::string& target,
                     const std::string& body) {
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(s.host, s.port);
    const auto req = make_request(s, method, target, body);
    if (s.scheme == "https") {
      net::ssl::context ctx(net::ssl::context::tls_client);
      ctx.set_default_verify_paths();
      ctx.set_verify_mode(net::ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
      // The name the certificate must carry, and the one the server is asked for (SNI).
      if (!SSL_set_tlsext_host_name(stream.native_handle(), s.host.c_str()))
        return {0, "", "cannot set the TLS server name " + s.host};
      stream.set_verify_callback(net::ssl::host_name_verification(s.host));
      beast::get_lowest_layer(stream).connect(endpoints);
      set_timeouts(beast::get_lowest_layer(stream).socket().native_handle());
      stream.handshake(net::ssl::stream_base::client);
      HttpAnswer a = exchange(stream, req);
      beast::error_code ignored;
      stream.shutdown(ignored);
      return a;
    }
    beast::tcp_stream stream(ioc);
    stream.connect(endpoints);
    set_timeouts(stream.socket().native_handle());
    HttpAnswer a = exchange(stream, req);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return a;
  } catch (const std::exception& e) {
    return {0, "", "cannot reach " + s.url + ": " + e.what()};
  }
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace cp::cli
