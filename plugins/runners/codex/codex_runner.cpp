// Runner `codex`: runs `codex exec --json` in the run's worktree and turns its JSONL stream into run
// events. The verdict comes from the last terminal turn event (turn.completed / turn.failed) together with
// the exit status and any signal, never from a lone `error` line; a stream without a terminal event is
// incomplete. Raw lines are kept verbatim in artifacts/codex/events.jsonl. Formats: the current one
// (`type`, `agent_message`), the Sep 2025 ones (`item_type`, `assistant_message`, `session.created`) and the
// legacy `{id, msg:{type}}` protocol.
#include "../../common/stream_runner.hpp"

#include <filesystem>
#include <fstream>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "binary": {"type": "string", "minLength": 1, "description": "The codex executable (default: codex, from PATH)."},
    "extra_args": {"type": "array", "items": {"type": "string"}, "description": "Added before the prompt, e.g. [\"-c\", \"model_reasoning_effort=\\\"high\\\"\"]."},
    "inherit_auth": {"type": "boolean", "description": "Copy auth.json from $CODEX_HOME or ~/.codex into the run's CODEX_HOME (default true)."},
    "price_per_mtok": {"type": "object", "additionalProperties": false,
      "properties": {"input": {"type": "number", "minimum": 0}, "cached_input": {"type": "number", "minimum": 0}, "output": {"type": "number", "minimum": 0}},
      "description": "USD per million tokens, to turn usage into cost (codex reports none)."}
  }
})";

std::string text_of(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

class CodexRun : public cp::plugins::StreamRun {
 public:
  CodexRun(cp::Context ctx, json run, const json& config)
      : StreamRun(ctx, std::move(run), "codex"), config_(config) {
    fs::path bundle = ctx_.bundle_dir();
    fs::create_directories(bundle / "artifacts/codex");
    // One CODEX_HOME per run under the runtime root: sessions of different runs never mix, and a resumed
    // run starts from a copy of the home its thread was recorded in.
    home_ = bundle.parent_path().parent_path() / "codex-home" / run_["run_id"].get<std::string>();
    fs::create_directories(home_);
    if (run_.contains("resume") && run_["resume"].contains("codex_home")) {
      fs::path from = run_["resume"]["codex_home"].get<std::string>();
      if (fs::is_directory(from))
        fs::copy(from, home_, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    }
    if (config_.value("inherit_auth", true)) {
      const char* env_home = std::getenv("CODEX_HOME");
      const char* user_home = std::getenv("HOME");
      fs::path src = env_home ? fs::path(env_home) : user_home ? fs::path(user_home) / ".codex" : fs::path();
      std::error_code ec;
      if (!src.empty() && fs::exists(src / "auth.json", ec) && !fs::exists(home_ / "auth.json", ec))
        fs::copy_file(src / "auth.json", home_ / "auth.json", ec);
    }
    costs_ = config_.value("price_per_mtok", json::object());
    launch();
  }

 protected:
  std::vector<std::string> argv() override {
    const json& c = run_["contract"];
    std::string fs_mode = c.contains("tool_permissions")
                              ? c["tool_permissions"].value("filesystem", "workspace-write")
                              : "workspace-write";
    std::vector<std::string> a{
        config_.value("binary", "codex"), "exec", "--json", "-C", ctx_.workspace(), "-s", fs_mode,
        "--skip-git-repo-check"};
    if (c["runtime_options"].contains("model")) a.insert(a.end(), {"-m", c["runtime_options"]["model"]});
    bool net = c.contains("tool_permissions") && c["tool_permissions"].value("network", "deny") == "allow";
    a.insert(a.end(),
             {"-c", std::string("sandbox_workspace_write.network_access=") + (net ? "true" : "false")});
    for (const auto& x : config_.value("extra_args", json::array())) a.push_back(x);
    for (const auto& x : c["runtime_options"].value("runner_args", json::array())) a.push_back(x);
    a.insert(a.end(), {"-o", ctx_.bundle_dir() + "/artifacts/codex/last_message.txt"});
    // Flags go before `resume`: both older and newer codex builds accept that order.
    if (run_.contains("resume") && run_["resume"].contains("thread_id"))
      a.insert(a.end(), {"resume", run_["resume"]["thread_id"].get<std::string>()});
    a.push_back("--");
    a.push_back(cp::plugins::build_prompt(c));
    return a;
  }
  std::vector<std::string> env() override { return {"CODEX_HOME=" + home_.string()}; }
  std::string raw_log_path() override { return ctx_.bundle_dir() + "/artifacts/codex/events.jsonl"; }

  void on_event(const json& e) override {
    if (e.contains("msg") && e["msg"].is_object()) return legacy(e["msg"]);
    std::string type = text_of(e, "type");
    if (type == "thread.started" || type == "session.created") {
      state_.thread_id = text_of(e, type == "thread.started" ? "thread_id" : "session_id");
      emit("AGENT_THREAD_STARTED", {{"thread_id", state_.thread_id}, {"runner", "codex"}});
    } else if (type == "turn.started") {
      state_.terminal = false;  // a later turn (e.g. after resume) decides anew
    } else if (type == "turn.completed") {
      state_.terminal = true;
      state_.terminal_ok = true;
      usage(e.value("usage", json::object()));
    } else if (type == "turn.failed") {
      state_.terminal = true;
      state_.terminal_ok = false;
      state_.terminal_message = e.contains("error") ? text_of(e["error"], "message") : "";
      emit("AGENT_TURN_FAILED", {{"message", state_.terminal_message}});
    } else if (type == "error") {
      // Reported, not decisive: retryable errors arrive this way too.
      emit("AGENT_ERROR", {{"message", text_of(e, "message")}});
    } else if (type == "item.completed") {
      item(e.value("item", json::object()));
    } else if (type == "item.started" || type == "item.updated") {
      // Progress only; items are judged when they complete.
    } else {
      unknown(type.empty() ? "(no type)" : type);
    }
  }

 private:
  void usage(const json& u) {
    // Cumulative over the thread: replace, never sum.
    state_.input_tokens = u.value("input_tokens", 0LL);
    state_.cached_input_tokens = u.value("cached_input_tokens", 0LL);
    state_.output_tokens = u.value("output_tokens", 0LL);
    if (!costs_.empty()) {
      double uncached = static_cast<double>(state_.input_tokens - state_.cached_input_tokens);
      state_.cost_usd = (uncached * costs_.value("input", 0.0) +
                         static_cast<double>(state_.cached_input_tokens) * costs_.value("cached_input", 0.0) +
                         static_cast<double>(state_.output_tokens) * costs_.value("output", 0.0)) /
                        1e6;
    }
    json ev = state_.usage();
    emit("USAGE_UPDATED", ev);
  }

  void item(const json& it) {
    std::string t = it.contains("type") ? text_of(it, "type") : text_of(it, "item_type");
    if (t == "command_execution") {
      ++state_.turns;
      command(text_of(it, "command"), it.value("exit_code", json()), it.value("status", "completed"));
    } else if (t == "file_change") {
      ++state_.turns;
      json paths = json::array();
      for (const auto& ch : it.value("changes", json::array()))
        paths.push_back({{"path", text_of(ch, "path")}, {"kind", text_of(ch, "kind")}});
      emit("FILE_CHANGED",
           {{"changes", paths}, {"status", it.value("status", "completed")}, {"source", "codex"}});
    } else if (t == "mcp_tool_call") {
      ++state_.turns;
      emit("MCP_TOOL_CALLED", {{"server", text_of(it, "server")},
                               {"tool", text_of(it, "tool")},
                               {"status", it.value("status", "completed")}});
    } else if (t == "agent_message" || t == "assistant_message") {
      state_.last_message = text_of(it, "text");
      emit("AGENT_MESSAGE", {{"text", state_.last_message.substr(0, 4000)}});
    } else if (t == "reasoning" || t == "todo_list" || t == "web_search" || t == "plan" || t == "error" ||
               t == "collab_tool_call") {
      // Known, nothing to judge: the raw line is in artifacts/codex/events.jsonl.
    } else {
      unknown("item:" + t);
    }
  }

  // The pre-thread protocol of very old CLIs: {"id":"…","msg":{"type":…}}.
  void legacy(const json& msg) {
    std::string t = text_of(msg, "type");
    if (t == "agent_message") {
      state_.last_message = text_of(msg, "message");
      emit("AGENT_MESSAGE", {{"text", state_.last_message.substr(0, 4000)}});
    } else if (t == "token_count") {
      usage(msg);
    } else if (t == "task_complete") {
      state_.terminal = true;
      state_.terminal_ok = true;
    } else if (t == "error") {
      emit("AGENT_ERROR", {{"message", text_of(msg, "message")}});
    } else if (t != "task_started") {
      unknown("legacy:" + t);
    }
  }

  json config_;
  json costs_;
  fs::path home_;
};

using CodexRunner = cp::plugins::ConfiguredRunner<CodexRun>;

}  // namespace

CP_PLUGIN("cp-runner-codex", "0.1.0",
          cp::runner<CodexRunner>("codex", "0.1.0",
                                  "Runs `codex exec --json` in the worktree and normalises its stream",
                                  kConfigSchema, R"(["spawn", "stream", "resume", "budgets"])"))
