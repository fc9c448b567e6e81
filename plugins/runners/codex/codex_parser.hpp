// What `codex exec --json` prints, as run events (the `--json` JSONL stream):
// thread and turn events, items (commands, file changes, MCP calls, messages), cumulative usage with an
// optional price, and the pre-thread protocol of very old CLIs. Used by the codex runner and the fuzzers.
#pragma once

#include "../../common/stream_parser.hpp"

namespace cp::plugins {

class CodexParser : public StreamParser {
 public:
  // `costs`: {"input", "cached_input", "output"} in USD per million tokens; empty = cost unknown.
  CodexParser(StreamState& state, Sinks sinks, json costs = json::object())
      : StreamParser("codex", state, std::move(sinks)), costs_(std::move(costs)) {}

 protected:
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
  static std::string text_of(const json& j, const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  }

  void usage(const json& u) {
    // Cumulative over the thread: replace, never sum.
    state_.input_tokens = token_count(u, "input_tokens");
    state_.cached_input_tokens = token_count(u, "cached_input_tokens");
    state_.output_tokens = token_count(u, "output_tokens");
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

  json costs_;
};

}  // namespace cp::plugins
