// Planner `llm`: an OpenAI-compatible chat model proposes the questions and the plan. The model is told
// the task packs, the request, the answers and the questions already asked, and the exact shape of the
// answer (planner_output, plan_bundle); its reply is passed on as it came (code fences stripped, the
// request's token usage added when it is a JSON object). The planner judges nothing: the host validates the
// answer and refuses, keeping the text as evidence, whatever does not fit. The provider is configured with
// the keys the provider_capability probe uses (base_url, model, api_key_env, request_timeout_sec), and the
// planner declares that probe, so the host asks it first: an unreachable provider or a refused key is said
// before any plan is asked.
#include "../../common/chat_client.hpp"

#include <cortexpilot/json_guard.h>
#include <cortexpilot/plugin.hpp>

#include <thread>

namespace {

using nlohmann::json;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    )" CP_PROVIDER_ENDPOINT_PROPERTIES R"(
    "model": {"type": "string", "minLength": 1, "description": "The chat model (default gpt-4o-mini)."},
    "request_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 600, "description": "Deadline of one request (default 120)."},
    "max_tokens": {"type": "integer", "minimum": 256, "maximum": 100000, "description": "Most tokens of the model's answer (default 4000)."},
    "retries": {"type": "integer", "minimum": 0, "maximum": 5, "description": "Retries on HTTP 429 and 5xx (default 1)."},
    "json_mode": {"type": "boolean", "description": "Ask for response_format json_object (default true); turn off for providers that refuse it."}
  }
})";

constexpr const char* kInstructions =
    R"(You plan software work for cp-host, a control plane that runs coding agents under task contracts.
A person described a job. Decide what to ask them, or propose the plan. Answer with ONE JSON object and nothing else (no prose, no code fence), in exactly one of these shapes:

1. Questions, when a required field of the chosen task pack has no answer yet:
{"status":"questions","task_pack":"<pack name or null>","questions":[{"id":"<field>-1","field":"<field name of the pack>","text":"<the question>","choices":["..."]}],"message":"<optional line>"}
Ask only about fields the pack declares (or field "task_pack" to ask which pack fits). Never ask again what "asked" shows was answered.

2. A plan, when every required field is known:
{"status":"plan","plan":{"schema_version":1,"task_pack":"<pack name or null>","title":"<= 200 chars","summary":"<the job in a few sentences>","fields":{"<field>":"<value>"},"steps":[STEP,...]}}
STEP (kind "task"): {"step_id":"fix","kind":"task","role":"WORKER","title":"...","runner":"codex","pack":"medium","instruction":"<what the agent must do>","allowed_paths":["src/"],"acceptance_tests":[{"name":"tests","cmd":"<command>"}]}
  optional: "task_type" (code_change|review|test|docs|research|chore), "commands" (tool runner only), "required_outputs" [{"name","path"}], "depends_on" [earlier step_ids], "parallel_group", "exclusive_paths", "continue_on_fail".
STEP (kind "handoff"): {"step_id":"...","kind":"handoff","from_role":"<role of the step before>","to_role":"<role of the step after>","summary":"..."}
Roles: PM, TECH_LEAD, WORKER, REVIEWER, TESTING. Runners: codex, claude, agents, tool (runs "commands" only), browser. Governance packs: low, medium, high.
Follow the chosen task pack's chain (its steps, roles, runners and paths) with its fields filled in; fields must fit each field's type and pattern. allowed_paths are relative to the repository root, never starting with "/" nor containing "..".

3. No task pack fits the request:
{"status":"no_match","reason":"<why>","suggestions":[{"task_pack":"<name>","why":"<why it might fit>"}]})";

std::string strip_fence(const std::string& text) {
  size_t a = text.find_first_not_of(" \t\r\n");
  if (a == std::string::npos || text.compare(a, 3, "```") != 0) return text;
  size_t nl = text.find('\n', a);
  size_t end = text.rfind("```");
  if (nl == std::string::npos || end == std::string::npos || end <= nl) return text;
  return text.substr(nl + 1, end - nl - 1);
}

json parse_guarded(const std::string& text) {
  if (cp_json_depth(text.data(), text.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH)
    return json(json::value_t::discarded);
  return json::parse(text, nullptr, false);
}

class LlmPlanner : public cp::Planner {
 public:
  LlmPlanner(cp::Context&, const std::string& config_json) {
    json cfg = json::parse(config_json);
    provider_ = cp::plugins::ProviderConfig::from(cfg);
    max_tokens_ = cfg.value("max_tokens", 4000);
    retries_ = cfg.value("retries", 1);
    json_mode_ = cfg.value("json_mode", true);
  }

  std::string plan(cp::Context& ctx, const std::string& input_json) override {
    json in = parse_guarded(input_json);
    if (!in.is_object()) throw cp::Error(CP_E_INVALID, "planner input is not a JSON object");
    json packs = json::array();
    for (const auto& p : in.value("task_packs", json::array()))
      if (p.is_object())
        packs.push_back({{"name", p.value("name", "")},
                         {"title", p.value("title", "")},
                         {"description", p.value("description", "")},
                         {"fields", p.value("fields", json::array())},
                         {"examples", p.value("match", json::object()).value("examples", json::array())},
                         {"chain", p.value("chain", json::object())}});
    json ask{{"request", in.value("request", "")},
             {"repo", in.value("repo", "")},
             {"task_pack", in.value("task_pack", json())},
             {"answers", in.value("answers", json::object())},
             {"asked", in.value("asked", json::array())}};
    json request{{"model", provider_.model},
                 {"max_tokens", max_tokens_},
                 {"temperature", 0},
                 {"messages",
                  json::array({{{"role", "system"},
                                {"content", std::string(kInstructions) + "\n\nTask packs:\n" + packs.dump()}},
                               {{"role", "user"}, {"content", ask.dump()}}})}};
    if (json_mode_) request["response_format"] = {{"type", "json_object"}};

    cp::plugins::HttpReply reply;
    for (int attempt = 0;; ++attempt) {
      if (ctx.cancelled()) throw cp::Error(CP_E_CANCELLED, "the host's deadline for this plan passed");
      reply = cp::plugins::post_chat(provider_, request.dump());
      bool retryable = reply.error.empty() && (reply.status == 429 || reply.status >= 500);
      if (!retryable || attempt >= retries_) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
    }
    const std::string where = provider_.model + " at " + provider_.base_url;
    if (!reply.error.empty())
      throw cp::Error(CP_E_FAILED, "provider " + where + " unreachable: " + reply.error);
    if (reply.status == 401 || reply.status == 403)
      throw cp::Error(CP_E_FAILED, "provider " + where + " refused the credentials (HTTP " +
                                       std::to_string(reply.status) + ": " +
                                       cp::plugins::provider_message(reply) + "); set a valid key in $" +
                                       provider_.api_key_env);
    if (reply.status < 200 || reply.status >= 300)
      throw cp::Error(CP_E_FAILED, "provider " + where + " answered HTTP " + std::to_string(reply.status) +
                                       ": " + cp::plugins::provider_message(reply));
    json doc = parse_guarded(reply.body);
    if (!doc.is_object() || !doc.contains("choices") || !doc["choices"].is_array() ||
        doc["choices"].empty() || !doc["choices"][0].is_object())
      throw cp::Error(CP_E_FAILED, "provider " + where + " answered without choices");
    const json message = doc["choices"][0].value("message", json::object());
    if (!message.is_object() || !message.contains("content") || !message["content"].is_string())
      throw cp::Error(CP_E_FAILED, "the model's answer has no text content");
    const std::string content = message["content"].get<std::string>();
    json answer = parse_guarded(strip_fence(content));
    if (!answer.is_object())
      return content;  // not JSON: passed on as it came, for the host to refuse and keep
    json usage{{"model", doc.value("model", provider_.model)}};
    if (doc.contains("usage") && doc["usage"].is_object())
      for (const char* k : {"prompt_tokens", "completion_tokens", "total_tokens"})
        if (doc["usage"].contains(k) && doc["usage"][k].is_number_unsigned()) usage[k] = doc["usage"][k];
    answer["usage"] = usage;
    return answer.dump();
  }

 private:
  cp::plugins::ProviderConfig provider_;
  int max_tokens_ = 4000;
  int retries_ = 1;
  bool json_mode_ = true;
};

}  // namespace

CP_PLUGIN(
    "cp-planner-llm", "0.1.0",
    cp::planner<LlmPlanner>("llm", "0.1.0",
                            "An OpenAI-compatible chat model proposes the questions and the plan; the host "
                            "validates them",
                            kConfigSchema, R"(["http", "probe:provider_capability"])"))
