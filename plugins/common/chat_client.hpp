// A minimal client for OpenAI-compatible `POST {base_url}/chat/completions`, shared by the `agents` runner
// and the `provider_capability` probe. Boost.Beast over plain TCP or TLS (OpenSSL, peer verified against
// the system's CA store), one synchronous request at a time with a deadline on the whole exchange.
// Header-only; only the two plugins that talk to providers include it (Beast is heavy to compile).
#pragma once

#include <cortexpilot/json_guard.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace cp::plugins {

struct ProviderConfig {
  std::string base_url;  // e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1
  std::string model;
  std::string api_key_env;  // name of the environment variable holding the key ("" = send none)
  std::chrono::seconds timeout{120};

  static ProviderConfig from(const nlohmann::json& cfg) {
    ProviderConfig p;
    const char* env_base = std::getenv("OPENAI_BASE_URL");
    p.base_url = cfg.value("base_url", std::string(env_base ? env_base : "https://api.openai.com/v1"));
    p.model = cfg.value("model", std::string("gpt-4o-mini"));
    p.api_key_env = cfg.value("api_key_env", std::string("OPENAI_API_KEY"));
    p.timeout = std::chrono::seconds(cfg.value("request_timeout_sec", 120));
    return p;
  }
};

struct HttpReply {
  int status = 0;  // HTTP status; 0 when no response arrived
  std::string body;
  std::string error;  // transport failure (refused, timeout, TLS): the provider was not reached
};

// POSTs `body` as JSON to {base_url}/chat/completions. Never throws.
inline HttpReply post_chat(const ProviderConfig& p, const std::string& body) {
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
    if (!p.api_key_env.empty())
      if (const char* key = std::getenv(p.api_key_env.c_str()); key && *key)
        req.set(http::field::authorization, std::string("Bearer ") + key);
    req.body() = body;
    req.prepare_payload();

    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(host, port);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    auto deadline = p.timeout;
    if (tls) {
      asio::ssl::context ctx(asio::ssl::context::tls_client);
      ctx.set_default_verify_paths();
      ctx.set_verify_mode(asio::ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
      SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
      stream.set_verify_callback(asio::ssl::host_name_verification(host));
      beast::get_lowest_layer(stream).expires_after(deadline);
      beast::get_lowest_layer(stream).connect(endpoints);
      stream.handshake(asio::ssl::stream_base::client);
      http::write(stream, req);
      http::read(stream, buffer, res);
      beast::error_code ec;
      stream.shutdown(ec);
    } else {
      beast::tcp_stream stream(io);
      stream.expires_after(deadline);
      stream.connect(endpoints);
      http::write(stream, req);
      http::read(stream, buffer, res);
      beast::error_code ec;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    }
    reply.status = static_cast<int>(res.result_int());
    reply.body = std::move(res.body());
  } catch (const boost::system::system_error& e) {
    reply.error =
        e.code().message();  // what() carries Asio's source location; the message is what users need
  } catch (const std::exception& e) {
    reply.error = e.what();
  }
  return reply;
}

// The provider's error message from a non-2xx body, or the body's start.
inline std::string provider_message(const HttpReply& r) {
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
