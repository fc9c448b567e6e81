// The client side of `--server URL`: HTTP(S) requests to a running `cp-host serve`, with the bearer token,
// for the commands that can work remotely (remote_commands.cpp). What the server answers is untrusted input:
// bodies are capped and parsed with the same depth limit as any file cp-host reads.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace cp::cli {

struct RemoteServer {
  std::string url;     // as given, for messages: http://127.0.0.1:8787
  std::string scheme;  // http | https
  std::string host, port;
  std::string base;   // a path prefix the API sits under ("" for none), without a trailing '/'
  std::string token;  // the bearer token; empty sends none (a server started with --open-reads)
};

// Parses http(s)://HOST[:PORT][/PREFIX]; nullopt with `error` set when it is not such a URL.
std::optional<RemoteServer> parse_server_url(const std::string& url, std::string& error);

struct HttpAnswer {
  int status = 0;               // 0 when no answer came (then `error` says why)
  std::string body;             // at most 64 MiB
  std::string error;            // a connection, TLS or protocol failure
  nlohmann::json json() const;  // the body as JSON; discarded when it is not JSON or too deep
  // The server's error message ({"error": {"message"}}), terminal-safe, or the status line when it gave none.
  std::string message() const;
};

// One request; `body` is sent as application/json when not empty. Never throws. Each request has one
// budget for resolving, connecting, the TLS handshake, sending and receiving together: 30 seconds, or
// CP_HOST_HTTP_TIMEOUT_MS milliseconds. A server that never answers, or trickles, ends with status 0.
HttpAnswer http_call(const RemoteServer& server, const std::string& method, const std::string& target,
                     const std::string& body = "");

// Percent-encodes a query or path component.
std::string url_encode(const std::string& s);

}  // namespace cp::cli
