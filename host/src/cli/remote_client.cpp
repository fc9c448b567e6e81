#include "cli/remote_client.hpp"

#include "cli/read_views.hpp"
#include "core/json_depth.hpp"
#include "core/version.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <chrono>
#include <cstdlib>

namespace cp::cli {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr uint64_t kMaxAnswerBytes = 64u << 20;

// The whole request's budget: resolving, connecting, the TLS handshake, sending and receiving together.
// CP_HOST_HTTP_TIMEOUT_MS shortens (or lengthens) it.
std::chrono::milliseconds budget() {
  if (const char* e = std::getenv("CP_HOST_HTTP_TIMEOUT_MS"); e && *e) {
    char* end = nullptr;
    const long long ms = std::strtoll(e, &end, 10);
    if (end && *end == '\0' && ms > 0 && ms <= 3600000) return std::chrono::milliseconds(ms);
  }
  return std::chrono::seconds(30);
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

// Runs one asynchronous step to its end: `start` begins it with a handler that records its outcome. The
// stream's own deadline (beast::tcp_stream::expires_at) ends a step that would wait past it.
template <class Start>
beast::error_code step(net::io_context& ioc, Start start) {
  beast::error_code result = net::error::operation_aborted;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// Sends the request and reads the answer, all before `deadline`; the body capped at kMaxAnswerBytes.
template <class Stream>
HttpAnswer exchange(net::io_context& ioc, Stream& stream, beast::tcp_stream& lowest,
                    const http::request<http::string_body>& req,
                    std::chrono::steady_clock::time_point deadline, const std::string& url) {
  HttpAnswer a;
  lowest.expires_at(deadline);
  if (auto ec = step(ioc, [&](auto h) { http::async_write(stream, req, h); }))
    return {0, "", "sending to " + url + ": " + ec.message()};
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  parser.header_limit(64 * 1024);
  lowest.expires_at(deadline);
  if (auto ec = step(ioc, [&](auto h) { http::async_read(stream, buffer, parser, h); }))
    return {0, "", "reading the answer of " + url + ": " + ec.message()};
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
    return terminal_safe(j["error"]["message"].get<std::string>()) + " (HTTP " + std::to_string(status) + ")";
  return "the server answered HTTP " + std::to_string(status);
}

HttpAnswer http_call(const RemoteServer& s, const std::string& method, const std::string& target,
                     const std::string& body) {
  try {
    const auto limit = budget();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    const std::string timed_out = "no answer from " + s.url + " within " + std::to_string(limit.count()) +
                                  " ms (CP_HOST_HTTP_TIMEOUT_MS)";
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    tcp::resolver::results_type endpoints;
    beast::error_code ec = net::error::operation_aborted;
    resolver.async_resolve(s.host, s.port, [&](beast::error_code e, tcp::resolver::results_type r) {
      ec = e;
      endpoints = std::move(r);
    });
    ioc.run_for(limit);
    if (!ioc.stopped()) {
      resolver.cancel();
      return {0, "", timed_out};
    }
    if (ec) return {0, "", "cannot resolve " + s.host + ": " + ec.message()};
    const auto req = make_request(s, method, target, body);
    auto failed = [&](const char* what, beast::error_code e) {
      return HttpAnswer{0, "",
                        e == beast::error::timeout ? timed_out : std::string(what) + ": " + e.message()};
    };
    if (s.scheme == "https") {
      net::ssl::context ctx(net::ssl::context::tls_client);
      ctx.set_default_verify_paths();
      ctx.set_verify_mode(net::ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
      // The name the certificate must carry, and the one the server is asked for (SNI).
      if (!SSL_set_tlsext_host_name(stream.native_handle(), s.host.c_str()))
        return {0, "", "cannot set the TLS server name " + s.host};
      stream.set_verify_callback(net::ssl::host_name_verification(s.host));
      beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
      lowest.expires_at(deadline);
      if (auto e = step(ioc, [&](auto h) { lowest.async_connect(endpoints, h); }))
        return failed(("cannot reach " + s.url).c_str(), e);
      lowest.expires_at(deadline);
      if (auto e = step(ioc, [&](auto h) { stream.async_handshake(net::ssl::stream_base::client, h); }))
        return failed(("TLS with " + s.url).c_str(), e);
      HttpAnswer a = exchange(ioc, stream, lowest, req, deadline, s.url);
      if (a.status == 0 && a.error.find("timeout") != std::string::npos) a.error = timed_out;
      beast::error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return a;
    }
    beast::tcp_stream stream(ioc);
    stream.expires_at(deadline);
    if (auto e = step(ioc, [&](auto h) { stream.async_connect(endpoints, h); }))
      return failed(("cannot reach " + s.url).c_str(), e);
    HttpAnswer a = exchange(ioc, stream, stream, req, deadline, s.url);
    if (a.status == 0 && a.error.find("timeout") != std::string::npos) a.error = timed_out;
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
