// What `claude -p --output-format stream-json --verbose` prints, as run events
// (the `stream-json` output): Bash tool calls become COMMAND_EXECUTED once their
// tool result arrives (with its error flag), Edit/Write/MultiEdit FILE_CHANGED, mcp__* tools MCP_TOOL_CALLED,
// and the final `result` line decides the turn and carries the cost. Used by the claude runner and the
// fuzzers.
#pragma once

#include "../../common/stream_parser.hpp"

#include <map>

namespace cp::plugins {

class ClaudeParser : public StreamParser {
 public:
  ClaudeParser(StreamState& state, Sinks sinks) : StreamParser("claude", state, std::move(sinks)) {}

 protected:
  void on_event(const json& e) override {
    std::string type = str(e, "type");
    if (type == "system") {
      if (str(e, "subtype") == "init") {
        state_.thread_id = str(e, "session_id");
        emit("AGENT_THREAD_STARTED",
             {{"thread_id", state_.thread_id}, {"runner", "claude"}, {"model", str(e, "model")}});
      }
    } else if (type == "assistant") {
      assistant(e.value("message", json::object()), e.value("parent_tool_use_id", json()).is_null());
    } else if (type == "user") {
      for (const auto& block : e.value("message", json::object()).value("content", json::array()))
        if (str(block, "type") == "tool_result") tool_result(block);
    } else if (type == "result") {
      state_.terminal = true;
      state_.terminal_ok = str(e, "subtype") == "success" && !e.value("is_error", false);
      state_.terminal_message =
          str(e, "subtype") + (str(e, "result").empty() ? "" : ": " + str(e, "result").substr(0, 500));
      if (e.contains("num_turns") && e["num_turns"].is_number_integer()) state_.turns = e["num_turns"];
      json cost = e.contains("total_cost_usd") ? e["total_cost_usd"] : e.value("cost_usd", json());
      if (cost.is_number()) state_.cost_usd = cost.get<double>();
      if (e.contains("usage")) tokens(e["usage"]);
      state_.last_message = str(e, "result");
      emit("USAGE_UPDATED", state_.usage());
    } else if (type == "stream_event" || type == "rate_limit_event") {
      // Partial deltas and rate-limit notices: kept raw only.
    } else {
      unknown(type.empty() ? "(no type)" : type);
    }
  }

 private:
  static std::string str(const json& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  }

  void tokens(const json& u) {
    state_.input_tokens =
        add_tokens(add_tokens(token_count(u, "input_tokens"), token_count(u, "cache_read_input_tokens")),
                   token_count(u, "cache_creation_input_tokens"));
    state_.cached_input_tokens = token_count(u, "cache_read_input_tokens");
    state_.output_tokens = token_count(u, "output_tokens");
  }

  void assistant(const json& msg, bool top_level) {
    if (top_level) ++state_.turns;  // sub-agent messages do not count as the run's turns
    if (msg.contains("usage")) {
      // Per-message usage: the running total is the sum over messages until `result` gives the final one.
      const json& u = msg["usage"];
      running_in_ = add_tokens(
          running_in_, add_tokens(token_count(u, "input_tokens"), token_count(u, "cache_read_input_tokens")));
      running_cached_ = add_tokens(running_cached_, token_count(u, "cache_read_input_tokens"));
      running_out_ = add_tokens(running_out_, token_count(u, "output_tokens"));
      state_.input_tokens = running_in_;
      state_.cached_input_tokens = running_cached_;
      state_.output_tokens = running_out_;
    }
    for (const auto& block : msg.value("content", json::array())) {
      std::string t = str(block, "type");
      if (t == "text") {
        state_.last_message = str(block, "text");
        emit("AGENT_MESSAGE", {{"text", state_.last_message.substr(0, 4000)}});
      } else if (t == "tool_use") {
        std::string name = str(block, "name");
        json input = block.value("input", json::object());
        std::string id = str(block, "id");
        if (name == "Bash") {
          pending_[id] = str(input, "command");
        } else if (name == "Edit" || name == "Write" || name == "MultiEdit" || name == "NotebookEdit") {
          std::string path =
              str(input, "file_path").empty() ? str(input, "notebook_path") : str(input, "file_path");
          emit("FILE_CHANGED",
               {{"changes",
                 json::array({{{"path", path}, {"kind", name == "Write" ? "add_or_update" : "update"}}})},
                {"status", "requested"},
                {"source", "claude"}});
        } else if (name.rfind("mcp__", 0) == 0) {
          size_t sep = name.find("__", 5);
          emit("MCP_TOOL_CALLED",
               {{"server", name.substr(5, sep == std::string::npos ? std::string::npos : sep - 5)},
                {"tool", sep == std::string::npos ? "" : name.substr(sep + 2)},
                {"status", "requested"}});
        }
      }
    }
  }

  void tool_result(const json& block) {
    auto it = pending_.find(str(block, "tool_use_id"));
    if (it == pending_.end()) return;
    command(it->second, json(), block.value("is_error", false) ? "failed" : "completed");
    pending_.erase(it);
  }

  std::map<std::string, std::string> pending_;  // Bash tool_use id -> command, until its result arrives
  long long running_in_ = 0, running_cached_ = 0, running_out_ = 0;
};

}  // namespace cp::plugins
