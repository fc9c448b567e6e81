// A minimal client for OpenAI-compatible `POST {base_url}/chat/completions`, shared by the `agents` runner,
// the `provider_capability` probe and the `llm` planner. Boost.Beast over plain TCP or TLS (OpenSSL, peer
// verified against the system's CA store), one request at a time with a deadline on the whole exchange: name
// lookup, connect, handshake, request and response together. The steps run asynchronously on a private
// io_context for that reason alone: Beast's timeouts apply to asynchronous operations only, and a provider
// that accepts and never answers, or answers one byte at a time, would hold a blocking read for ever. The
// response is at most Beast's 8 MB; the API key never comes back in it (a provider or a proxy that echoes
// it has it replaced by "[redacted]" before anyone sees the body).
// The exchange itself is compiled once, in chat_client.cpp (library cp_chat_client): Beast and its TLS
// stream are heavy to compile, and this header keeps them out of the plugins that use it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

namespace cp::plugins {

// Where the provider is and which environment variable holds its key, as JSON Schema properties followed by
// a comma: every plugin that talks to a provider (the agents runner, the llm planner, the provider probe)
// declares these two alike inside its config schema's "properties", before its own keys.
#define CP_PROVIDER_ENDPOINT_PROPERTIES                                                                                                                                   \
  R"("base_url": {"type": "string", "pattern": "^https?://", "description": "OpenAI-compatible API root, e.g. https://api.openai.com/v1 (default: $OPENAI_BASE_URL)."},)" \
  R"("api_key_env": {"type": "string", "description": "Environment variable holding the API key (default OPENAI_API_KEY)."},)"

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
HttpReply post_chat(const ProviderConfig& p, const std::string& body);

// The provider's error message from a non-2xx body, or the body's start.
std::string provider_message(const HttpReply& r);

}  // namespace cp::plugins
