// Runner `agents`: a bounded tool loop against an OpenAI-compatible `/v1/chat/completions` endpoint. The
// model may call three tools, each executed by this runner inside the run's worktree and never beyond what
// the contract allows: run_command (the contract's forbidden actions and the command allowlist, no shell,
// through the host's spawn service), write_file and read_file (run inside cp-host, so every path is resolved
// beneath a descriptor of the worktree and never through a symlink: see worktree_files.hpp). Tools are
// offered only when the contract's tool_permissions allow them. The loop ends when the model answers without
// tool calls (completed), at max_steps, on a budget breach, or on a provider error (failed).
#include "../../common/chat_client.hpp"
#include "../../common/command_policy.hpp"
#include "../../common/forbidden_match.hpp"
#include "../../common/stream_runner.hpp"
#include "../../common/threaded_run.hpp"
#include "worktree_files.hpp"

#include <cortexpilot/json_guard.h>

#include <thread>

namespace {

using nlohmann::json;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    )" CP_PROVIDER_ENDPOINT_PROPERTIES R"(
    "model": {"type": "string", "minLength": 1, "description": "Default model; the contract's runtime_options.model wins."},
    "request_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 3600},
    "max_steps": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Model calls per run (default 30)."},
    "retries": {"type": "integer", "minimum": 0, "maximum": 10, "description": "Retries on 429/5xx, with backoff (default 2)."},
    "command_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 86400}
  }
})";

json tool_defs(bool shell, bool files) {
  json tools = json::array();
  auto fn = [](const char* name, const char* desc, json params) {
    return json{{"type", "function"},
                {"function", {{"name", name}, {"description", desc}, {"parameters", params}}}};
  };
  if (shell)
    tools.push_back(fn("run_command",
                       "Run one command (no shell) in the repository root; returns exit code and output.",
                       {{"type", "object"},
                        {"properties", {{"command", {{"type", "string"}}}}},
                        {"required", {"command"}}}));
  if (files) {
    tools.push_back(fn("write_file", "Write a file (path relative to the repository root).",
                       {{"type", "object"},
                        {"properties", {{"path", {{"type", "string"}}}, {"content", {{"type", "string"}}}}},
                        {"required", {"path", "content"}}}));
    tools.push_back(
        fn("read_file", "Read a file (path relative to the repository root).",
           {{"type", "object"}, {"properties", {{"path", {{"type", "string"}}}}}, {"required", {"path"}}}));
  }
  return tools;
}

class AgentsRun : public cp::plugins::ThreadedRun {
 public:
  AgentsRun(cp::Context ctx, json run, const json& config)
      : ctx_(ctx),
        run_(std::move(run)),
        config_(config),
        provider_(cp::plugins::ProviderConfig::from(config)),
        allow_(run_.contains("policies") ? run_["policies"].value("command_allowlist", json::object())
                                         : json::object()) {
    budgets_ = cp::plugins::Budgets::from(run_["contract"]);
    if (run_["contract"]["runtime_options"].contains("model"))
      provider_.model = run_["contract"]["runtime_options"]["model"];
    launch();
  }
  ~AgentsRun() override { stop_and_join(); }

 private:
  bool stopping() const { return cancelled_ || ctx_.cancelled(); }

  void emit(const std::string& type, const json& payload) {
    try {
      ctx_.emit(type, payload.dump());
    } catch (const std::exception& e) {
      ctx_.log(CP_LOG_WARN, "agents: event " + type + " refused: " + e.what());
    }
  }

  void end(const std::string& status, const std::string& reason, json extra = json::object()) {
    json r{{"status", status}, {"reason", reason}, {"commands", commands_}, {"usage", state_.usage()}};
    if (!state_.last_message.empty()) r["last_message"] = state_.last_message.substr(0, 4000);
    r.update(extra);
    finish(std::move(r));
  }

  std::string run_command(const std::string& line) {
    std::vector<std::string> argv;
    std::string denial;
    const cp::plugins::AllowEntry* hit = cp::plugins::admit_command(allow_, forbidden_, line, argv, denial);
    if (!hit) {
      commands_.push_back(
          {{"command", line}, {"status", "declined"}, {"reason", denial}, {"source", "agents"}});
      emit("COMMAND_DECLINED",
           {{"command", line}, {"status", "declined"}, {"reason", denial}, {"source", "agents"}});
      return "refused: " + denial;
    }
    cp::SpawnOptions opt;
    opt.argv = argv;
    opt.cwd = ctx_.workspace();
    opt.env = cp::plugins::spawn_environment(*hit);
    opt.timeout_ms = static_cast<uint64_t>(config_.value("command_timeout_sec", 600)) * 1000;
    opt.capture_limit = 16384;
    cp::SpawnResult r = ctx_.spawn(opt);
    std::string status = r.ok()        ? "completed"
                         : r.timed_out ? "timeout"
                         : r.cancelled ? "cancelled"
                                       : "failed";
    commands_.push_back({{"command", line},
                         {"argv", argv},
                         {"status", status},
                         {"exit_code", r.exit_code},
                         {"duration_ms", r.duration_ms},
                         {"source", "agents"}});
    emit("COMMAND_EXECUTED",
         {{"command", line}, {"status", status}, {"exit_code", r.exit_code}, {"source", "agents"}});
    return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
  }

  std::string file_tool(const std::string& name, const json& args) {
    std::string rel = args.value("path", "");
    if (name == "read_file") return files_.read(rel, 65536);
    bool existed = false;
    if (std::string error = files_.write(rel, args.value("content", ""), existed); !error.empty())
      return error;
    emit("FILE_CHANGED", {{"changes", json::array({{{"path", rel}, {"kind", existed ? "update" : "add"}}})},
                          {"status", "completed"},
                          {"source", "agents"}});
    return "wrote " + rel;
  }

  // One chat call with retries on 429/5xx. Returns the parsed response, or null after setting `problem`.
  json call(const json& request, std::string& problem) {
    int retries = config_.value("retries", 2);
    for (int attempt = 0;; ++attempt) {
      auto reply = cp::plugins::post_chat(provider_, request.dump());
      if (!reply.error.empty()) {
        problem = "provider unreachable at " + provider_.base_url + ": " + reply.error;
      } else if (reply.status == 401 || reply.status == 403) {
        problem = "provider refused the credentials (HTTP " + std::to_string(reply.status) +
                  "): " + cp::plugins::provider_message(reply);
        return nullptr;  // retrying cannot help
      } else if (reply.status >= 200 && reply.status < 300) {
        json doc = cp_json_depth(reply.body.data(), reply.body.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH
                       ? json(json::value_t::discarded)
                       : json::parse(reply.body, nullptr, false);
        if (doc.is_object() && doc.contains("choices") && !doc["choices"].empty()) return doc;
        problem = "provider answered without choices";
        return nullptr;
      } else {
        problem = "provider error HTTP " + std::to_string(reply.status) + ": " +
                  cp::plugins::provider_message(reply);
        if (reply.status != 429 && reply.status < 500) return nullptr;
      }
      emit("AGENT_ERROR", {{"message", problem + (attempt < retries ? " (retrying)" : "")}});
      if (attempt >= retries || stopping()) return nullptr;
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    }
  }

  void execute() override {
    try {
      const json& c = run_["contract"];
      forbidden_ = cp::plugins::ForbiddenActions::for_run(c, run_.value("policies", json::object()));
      json perms = c.value("tool_permissions", json::object());
      bool shell = perms.value("shell", "allowlist") != "deny";
      bool files = perms.value("filesystem", "workspace-write") != "read-only";
      json messages = json::array(
          {{{"role", "system"},
            {"content",
             "You are a coding agent working in a git repository. Use the tools to make the change, "
             "then answer with a short summary and no tool call."}},
           {{"role", "user"}, {"content", cp::plugins::build_prompt(c, run_.value("role_prompt", json()))}}});
      json tools = tool_defs(shell, files);
      // Before any command of the run starts, so the descriptor is the worktree cp-host made.
      if (files) files_.open(ctx_.workspace());
      int max_steps = config_.value("max_steps", 30);
      emit("AGENT_THREAD_STARTED",
           {{"thread_id", run_.value("run_id", "")}, {"runner", "agents"}, {"model", provider_.model}});
      for (int step = 0; step < max_steps; ++step) {
        if (stopping()) return end("cancelled", "the run was cancelled");
        json request{{"model", provider_.model}, {"messages", messages}};
        if (!tools.empty()) request["tools"] = tools;
        std::string problem;
        json doc = call(request, problem);
        if (doc.is_null()) {
          if (stopping()) return end("cancelled", "the run was cancelled");
          emit("AGENT_TURN_FAILED", {{"message", problem}});
          return end("failed", problem);
        }
        ++state_.turns;
        if (doc.contains("usage")) {
          state_.input_tokens += doc["usage"].value("prompt_tokens", 0LL);
          state_.output_tokens += doc["usage"].value("completion_tokens", 0LL);
          emit("USAGE_UPDATED", state_.usage());
        }
        json msg = doc["choices"][0].value("message", json::object());
        json calls = msg.value("tool_calls", json::array());
        std::string text =
            msg.contains("content") && msg["content"].is_string() ? msg["content"].get<std::string>() : "";
        if (!text.empty()) {
          state_.last_message = text;
          emit("AGENT_MESSAGE", {{"text", text.substr(0, 4000)}});
        }
        if (json breach = breach_of(); !breach.is_null()) {
          emit("BUDGET_EXCEEDED", breach);
          return end("failed",
                     "budget_exceeded: " + breach["budget"].get<std::string>() + " " +
                         breach["value"].dump() + " > " + breach["limit"].dump(),
                     {{"budget_exceeded", breach}});
        }
        if (calls.empty())
          return end("completed", "the model finished after " + std::to_string(step + 1) + " call(s)");
        messages.push_back(msg);
        for (const auto& tc : calls) {
          if (stopping()) return end("cancelled", "the run was cancelled");
          std::string name = tc["function"].value("name", "");
          json args = json::parse(tc["function"].value("arguments", "{}"), nullptr, false);
          std::string answer;
          if (!args.is_object())
            answer = "error: arguments are not a JSON object";
          else if (name == "run_command" && shell)
            answer = run_command(args.value("command", ""));
          else if ((name == "write_file" || name == "read_file") && files)
            answer = file_tool(name, args);
          else
            answer = "error: no tool '" + name + "' in this run";
          messages.push_back({{"role", "tool"}, {"tool_call_id", tc.value("id", "")}, {"content", answer}});
        }
      }
      end("failed",
          "the model was still calling tools after max_steps (" + std::to_string(max_steps) + ") calls");
    } catch (const std::exception& e) {
      end("error", std::string("agents runner: ") + e.what());
    }
  }

  json breach_of() const {
    long long tokens = state_.input_tokens + state_.output_tokens;
    if (budgets_.max_tokens > 0 && tokens > budgets_.max_tokens)
      return {{"budget", "max_tokens"}, {"limit", budgets_.max_tokens}, {"value", tokens}};
    if (budgets_.max_turns > 0 && state_.turns > budgets_.max_turns)
      return {{"budget", "max_turns"}, {"limit", budgets_.max_turns}, {"value", state_.turns}};
    return nullptr;
  }

  cp::Context ctx_;
  json run_;
  json config_;
  cp::plugins::ProviderConfig provider_;
  cp::plugins::CommandAllowlist allow_;
  cp::plugins::ForbiddenActions forbidden_;
  cp::plugins::Budgets budgets_;
  cp::plugins::StreamState state_;
  json commands_ = json::array();
  cp::plugins::agents::WorktreeFiles files_;
};

using AgentsRunner = cp::plugins::ConfiguredRunner<AgentsRun>;

}  // namespace

CP_PLUGIN("cp-runner-agents", "0.1.0",
          cp::runner<AgentsRunner>(
              "agents", "0.1.0", "A bounded tool loop against an OpenAI-compatible chat completions endpoint",
              kConfigSchema, R"(["spawn", "http", "budgets", "probe:provider_capability"])"))
