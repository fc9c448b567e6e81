// Probe `provider_capability`: classifies the configured OpenAI-compatible provider by a real request —
// a one-tool chat completion that a tool-capable model answers with a tool call. Status: `ok` when the
// provider was reached and accepted the key; `error` when it was unreachable, refused the key, or answered
// something unusable. capabilities.tool_execution says whether the run engine may give it tool work: a
// contract that needs tools on a chat_only provider fails closed before its run starts.
#include "../../common/chat_client.hpp"

#include <cortexpilot/json_guard.h>
#include <cortexpilot/plugin.hpp>

namespace {

using nlohmann::json;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    )" CP_PROVIDER_ENDPOINT_PROPERTIES R"(
    "model": {"type": "string", "minLength": 1},
    "request_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 600},
    "ttl_seconds": {"type": "integer", "minimum": 0, "maximum": 86400}
  }
})";

class ProviderProbe : public cp::Probe {
 public:
  ProviderProbe(cp::Context&, const std::string& config_json) {
    json cfg = json::parse(config_json);
    if (!cfg.contains("request_timeout_sec")) cfg["request_timeout_sec"] = 20;
    provider_ = cp::plugins::ProviderConfig::from(cfg);
    ttl_ = cfg.value("ttl_seconds", 300);
  }

  std::string probe(cp::Context&) override {
    json request{
        {"model", provider_.model},
        {"max_tokens", 32},
        {"messages",
         json::array({{{"role", "user"}, {"content", "Call the cp_ping tool once, with no arguments."}}})},
        {"tools", json::array({{{"type", "function"},
                                {"function",
                                 {{"name", "cp_ping"},
                                  {"description", "Answers pong."},
                                  {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}}})}};
    auto reply = cp::plugins::post_chat(provider_, request.dump());
    json caps{{"lane", "openai_compatible"},
              {"compat_api_mode", "chat_completions"},
              {"base_url", provider_.base_url},
              {"model", provider_.model},
              {"tool_execution", false}};
    auto answer = [&](const char* status, const char* provider_status, const std::string& message) {
      caps["provider_status"] = provider_status;
      json out{{"status", status}, {"capabilities", caps}, {"ttl_seconds", ttl_}};
      if (!message.empty()) out["message"] = message;
      return out.dump();
    };
    if (!reply.error.empty()) return answer("error", "unreachable", "provider unreachable: " + reply.error);
    if (reply.status == 401 || reply.status == 403)
      return answer("error", "unauthorised",
                    "provider refused the credentials (HTTP " + std::to_string(reply.status) + ")");
    std::string msg = cp::plugins::provider_message(reply);
    if (reply.status == 400 && msg.find("tool") != std::string::npos)
      return answer("ok", "chat_only", "the provider rejects tool definitions: " + msg);
    if (reply.status < 200 || reply.status >= 300)
      return answer("error", "error", "provider answered HTTP " + std::to_string(reply.status) + ": " + msg);
    json doc = cp_json_depth(reply.body.data(), reply.body.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH
                   ? json(json::value_t::discarded)
                   : json::parse(reply.body, nullptr, false);
    if (!doc.is_object() || !doc.contains("choices") || doc["choices"].empty())
      return answer("error", "error", "provider answered without choices");
    json calls = doc["choices"][0].value("message", json::object()).value("tool_calls", json::array());
    if (calls.empty()) return answer("ok", "chat_only", "the model answered the tool request with text");
    caps["tool_execution"] = true;
    return answer("ok", "tool_capable", "");
  }

 private:
  cp::plugins::ProviderConfig provider_;
  int ttl_ = 300;
};

}  // namespace

CP_PLUGIN("cp-probe-provider-capability", "0.1.0",
          cp::probe<ProviderProbe>(
              "provider_capability", "0.1.0",
              "Classifies an OpenAI-compatible provider as tool_capable or chat_only by a real request",
              kConfigSchema, R"(["http"])"))
