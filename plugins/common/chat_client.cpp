// The exchange of chat_client.hpp: Beast over plain TCP or TLS, each step within the call's deadline.
#include "chat_client.hpp"

#include <cortexpilot/json_guard.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <stdexcept>

namespace cp::plugins {

namespace {

// Runs the asynchronous operation `start` begins (handing it the completion handler) until it ends or the
// deadline passes; then `abort` closes what is open, which ends the operation, and the answer is timed_out.
template <class Start, class Abort>
boost::system::error_code run_step(boost::asio::io_context& io,
                                   std::chrono::steady_clock::time_point deadline, Start&& start,
                                   Abort&& abort) {
  boost::system::error_code result;
  bool done = false;
  start([&](boost::system::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  io.restart();
  io.run_until(deadline);
  if (done) return result;
  abort();
  io.restart();
  io.run();  // the aborted operation's handler
  return boost::asio::error::timed_out;
}

// `text` with every occurrence of `secret` (and of its JSON-escaped form) replaced by "[redacted]". Keys
// shorter than 8 characters are not keys worth the name, and replacing them would mangle ordinary words.
void redact_secret(std::string& text, const std::string& secret) {
  if (secret.size() < 8) return;
  std::string escaped = nlohmann::json(secret).dump();
  escaped = escaped.substr(1, escaped.size() - 2);
  for (const std::string& needle : {secret, escaped})
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at))
      text.replace(at, needle.size(), "[redacted]");
}

}  // namespace

HttpReply post_chat(const ProviderConfig& p, const std::string& body) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace asio = boost::asio;
  HttpReply reply;
  try {
    std::string url = p.base_url;
    bool tls = url.rfind("https://", 0) == 0;
    if (!tls && url.rfind("http://", 0) != 0) {
      reply.error = "base_url must start with http:// or https://: " + url;
      return reply;
    }
    url = url.substr(tls ? 8 : 7);
    size_t slash = url.find('/');
    std::string hostport = url.substr(0, slash);
    std::string path = (slash == std::string::npos ? "" : url.substr(slash));
    while (!path.empty() && path.back() == '/') path.pop_back();
    path += "/chat/completions";
    std::string host = hostport, port = tls ? "443" : "80";
    if (size_t colon = hostport.rfind(':'); colon != std::string::npos) {
      host = hostport.substr(0, colon);
      port = hostport.substr(colon + 1);
    }

    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, hostport);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "cp-host");
    std::string key;
    if (!p.api_key_env.empty())
      if (const char* k = std::getenv(p.api_key_env.c_str()); k && *k) key = k;
    if (!key.empty()) req.set(http::field::authorization, std::string("Bearer ") + key);
    req.body() = body;
    req.prepare_payload();

    const auto deadline = std::chrono::steady_clock::now() + p.timeout;
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    asio::ip::tcp::resolver::results_type endpoints;
    auto fail = [&](boost::system::error_code ec, const char* step) {
      if (ec == asio::error::timed_out)
        throw std::runtime_error("no answer within " + std::to_string(p.timeout.count()) +
                                 " s (request_timeout_sec; " + step + ")");
      throw boost::system::system_error(ec);
    };
    if (auto ec = run_step(
            io, deadline,
            [&](auto handler) {
              resolver.async_resolve(
                  host, port,
                  [&, handler](boost::system::error_code e, asio::ip::tcp::resolver::results_type r) mutable {
                    endpoints = std::move(r);
                    handler(e);
                  });
            },
            [&] { resolver.cancel(); }))
      fail(ec, "looking up the host");
    // One exchange on `stream` (tcp or TLS): connect, [handshake,] write, read, each within the deadline.
    auto exchange = [&](auto& stream, auto& lowest, auto&& handshake) {
      auto abort = [&] {
        boost::system::error_code ignored;
        lowest.socket().close(ignored);
      };
      if (auto ec = run_step(
              io, deadline, [&](auto handler) { lowest.async_connect(endpoints, handler); }, abort))
        fail(ec, "connecting");
      if (auto ec = run_step(io, deadline, handshake, abort)) fail(ec, "TLS handshake");
      if (auto ec = run_step(
              io, deadline, [&](auto handler) { http::async_write(stream, req, handler); }, abort))
        fail(ec, "sending the request");
      if (auto ec = run_step(
              io, deadline, [&](auto handler) { http::async_read(stream, buffer, res, handler); }, abort))
        fail(ec, "reading the answer");
      abort();  // no TLS close_notify exchange: a peer that never answers it cannot hold the call
    };
    if (tls) {
      asio::ssl::context ctx(asio::ssl::context::tls_client);
      ctx.set_default_verify_paths();
      ctx.set_verify_mode(asio::ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
      SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
      stream.set_verify_callback(asio::ssl::host_name_verification(host));
      exchange(stream, beast::get_lowest_layer(stream),
               [&](auto handler) { stream.async_handshake(asio::ssl::stream_base::client, handler); });
    } else {
      beast::tcp_stream stream(io);
      exchange(stream, stream, [&](auto handler) { asio::post(io, [handler]() mutable { handler({}); }); });
    }
    reply.status = static_cast<int>(res.result_int());
    reply.body = std::move(res.body());
    redact_secret(reply.body, key);
  } catch (const boost::system::system_error& e) {
    reply.error =
        e.code().message();  // what() carries Asio's source location; the message is what users need
  } catch (const std::exception& e) {
    reply.error = e.what();
  }
  return reply;
}

std::string provider_message(const HttpReply& r) {
  if (cp_json_depth(r.body.data(), r.body.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH)
    return "(deeply nested body)";
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  if (doc.is_object() && doc.contains("error")) {
    const auto& e = doc["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string())
      return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  return r.body.substr(0, 300);
}

}  // namespace cp::plugins
