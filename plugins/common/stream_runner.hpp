// What the agent runners (codex, claude) share: run one agent CLI through the host's spawn service on a
// worker thread, split its stdout into lines as they arrive, hand each line to the runner's parser, enforce
// the contract's budgets from the stream (the agent is stopped the moment one is broken), and turn the
// stream's terminal event, the exit status and any signal into a runner result
// (schemas/runner_result.schema.json). Header-only: each plugin compiles its own copy.
#pragma once

#include "threaded_run.hpp"

#include <cortexpilot/json_guard.h>
#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace cp::plugins {

using nlohmann::json;

// The contract's budgets; 0 = no limit.
struct Budgets {
  long long max_turns = 0;
  long long max_tokens = 0;
  double max_cost_usd = 0;
  static Budgets from(const json& contract) {
    Budgets b;
    if (!contract.contains("budgets")) return b;
    const json& j = contract["budgets"];
    b.max_turns = j.value("max_turns", 0LL);
    b.max_tokens = j.value("max_tokens", 0LL);
    b.max_cost_usd = j.value("max_cost_usd", 0.0);
    return b;
  }
};

// What a parser learns from the stream.
struct StreamState {
  std::string thread_id;
  long long input_tokens = 0, cached_input_tokens = 0, output_tokens = 0;
  double cost_usd = -1;  // < 0: unknown
  long long turns = 0;   // what max_turns counts (agent turns, or items for codex)
  json commands = json::array();
  bool terminal = false;     // a terminal event was seen
  bool terminal_ok = false;  // ... and it said the work completed
  std::string terminal_message;
  std::string last_message;  // the agent's last message, for the result
  uint64_t lines = 0, malformed = 0, oversized = 0;
  std::set<std::string> unknown_types;
  json usage() const {
    json u{{"input_tokens", input_tokens},
           {"cached_input_tokens", cached_input_tokens},
           {"output_tokens", output_tokens},
           {"turns", turns}};
    if (cost_usd >= 0) u["cost_usd"] = cost_usd;
    return u;
  }
};

// Splits a byte stream into lines. A line longer than max_line is not kept: it is counted as oversized
// (the raw bytes are still in the artifact file the host writes).
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line) : max_(max_line) {}
  template <class F>
  void feed(std::string_view chunk, uint64_t& oversized, F&& on_line) {
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      std::string_view part = chunk.substr(0, nl);
      if (!skipping_) {
        if (buf_.size() + part.size() > max_) {
          skipping_ = true;
          buf_.clear();
          buf_.shrink_to_fit();
          ++oversized;
        } else {
          buf_.append(part);
        }
      }
      if (nl == std::string_view::npos) return;
      if (!skipping_) on_line(std::string_view(buf_));
      buf_.clear();
      skipping_ = false;
      chunk.remove_prefix(nl + 1);
    }
  }
  template <class F>
  void flush(F&& on_line) {
    if (!skipping_ && !buf_.empty()) on_line(std::string_view(buf_));
    buf_.clear();
  }

 private:
  size_t max_;
  std::string buf_;
  bool skipping_ = false;
};

// The prompt an agent gets: the contract's spec plus the rules it will be judged by.
inline std::string build_prompt(const json& contract) {
  std::string p;
  if (contract.contains("title")) p += contract["title"].get<std::string>() + "\n\n";
  p += contract["inputs"].value("spec", "");
  p += "\n\nRules of this task (checked after you finish):\n- Change only files under:";
  for (const auto& a : contract.value("allowed_paths", json::array())) p += " " + a.get<std::string>();
  p += "\n";
  for (const auto& t : contract.value("acceptance_tests", json::array()))
    p += "- This must pass: " + t.value("cmd", "") + "\n";
  for (const auto& o : contract.value("required_outputs", json::array()))
    p += "- This file must exist: " + o.value("path", "") + "\n";
  return p;
}

// One agent run. Subclasses give the argv and parse lines; this class does the rest.
class StreamRun : public ThreadedRun {
 public:
  StreamRun(cp::Context ctx, json run, std::string runner_id)
      : ctx_(ctx), run_(std::move(run)), id_(std::move(runner_id)) {
    budgets_ = Budgets::from(run_["contract"]);
  }
  ~StreamRun() override { stop_and_join(); }

 protected:
  virtual std::vector<std::string> argv() = 0;
  virtual std::vector<std::string> env() { return {}; }  // extra "K=V" on top of the host's environment
  virtual std::string raw_log_path() = 0;                // where the host writes stdout verbatim
  // One JSON object line of the agent's stdout. Blank lines are skipped; lines that are not a JSON object
  // (or nest deeper than CP_JSON_MAX_DEPTH) are counted as malformed and never reach here.
  virtual void on_event(const json& event) = 0;

  // Never throws: it runs inside the host's stdout callback, where an exception must not cross the ABI.
  void emit(const std::string& type, const json& payload) {
    try {
      ctx_.emit(type, payload.dump());
    } catch (const std::exception& e) {
      ctx_.log(CP_LOG_WARN, id_ + ": event " + type + " refused: " + e.what());
    }
  }
  // Logs one line per unknown type, once.
  void unknown(const std::string& type) {
    if (state_.unknown_types.insert(type).second)
      ctx_.log(CP_LOG_INFO, id_ + ": unknown stream event type '" + type + "' kept raw, not interpreted");
  }
  // Records a command the agent ran, for the forbidden_actions gate and the COMMAND_EXECUTED event.
  void command(const std::string& cmd, json exit_code, const std::string& status) {
    state_.commands.push_back({{"command", cmd}, {"status", status}, {"source", id_}});
    if (exit_code.is_number_integer()) state_.commands.back()["exit_code"] = exit_code;
    json ev{{"command", cmd}, {"status", status}, {"source", id_}};
    if (exit_code.is_number_integer()) ev["exit_code"] = exit_code;
    emit(status == "declined" ? "COMMAND_DECLINED" : "COMMAND_EXECUTED", ev);
  }

  cp::Context ctx_;
  json run_;
  std::string id_;
  Budgets budgets_;
  StreamState state_;

 private:
  // Empty while within budget; else what broke.
  json budget_breach() const {
    long long tokens = state_.input_tokens + state_.output_tokens;
    if (budgets_.max_tokens > 0 && tokens > budgets_.max_tokens)
      return {{"budget", "max_tokens"}, {"limit", budgets_.max_tokens}, {"value", tokens}};
    if (budgets_.max_turns > 0 && state_.turns > budgets_.max_turns)
      return {{"budget", "max_turns"}, {"limit", budgets_.max_turns}, {"value", state_.turns}};
    if (budgets_.max_cost_usd > 0 && state_.cost_usd > budgets_.max_cost_usd)
      return {{"budget", "max_cost_usd"}, {"limit", budgets_.max_cost_usd}, {"value", state_.cost_usd}};
    return nullptr;
  }

  void execute() override {
    try {
      cp::SpawnOptions opt;
      opt.argv = argv();
      opt_argv0_ = opt.argv.empty() ? id_ : opt.argv[0];
      opt.cwd = ctx_.workspace();
      opt.stdout_path = raw_log_path();
      opt.stderr_path = raw_log_path().substr(0, raw_log_path().rfind('/') + 1) + "stderr.log";
      opt.capture_limit = 0;
      std::vector<std::string> extra = env();
      if (!extra.empty()) {
        std::vector<std::string> e;
        for (char** p = environ; *p; ++p) e.emplace_back(*p);
        for (const auto& kv : extra) {
          std::string key = kv.substr(0, kv.find('=') + 1);
          std::erase_if(e, [&](const std::string& x) { return x.rfind(key, 0) == 0; });
          e.push_back(kv);
        }
        opt.env = e;
      }
      LineSplitter lines(16u << 20);
      auto on_line = [this](std::string_view line) {
        ++state_.lines;
        if (line.empty()) return;
        if (cp_json_depth(line.data(), line.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH) {
          ++state_.malformed;  // hostile nesting is refused unparsed
          return;
        }
        json e = json::parse(line, nullptr, false);
        if (e.is_discarded() || !e.is_object()) {
          ++state_.malformed;
          return;
        }
        try {
          on_event(e);
        } catch (const std::exception&) {
          ++state_.malformed;  // valid JSON of an unexpected shape: counted, kept raw
        }
      };
      opt.on_stdout = [&](std::string_view chunk) {
        lines.feed(chunk, state_.oversized, on_line);
        if (breach_.is_null()) {
          breach_ = budget_breach();
          if (!breach_.is_null()) {
            emit("BUDGET_EXCEEDED", breach_);
            return false;  // the host stops the agent's process group
          }
        }
        return !cancelled_.load();
      };
      if (cancelled_)
        return finish(
            {{"status", "cancelled"}, {"reason", "cancelled before start"}, {"commands", json::array()}});
      cp::SpawnResult r = ctx_.spawn(opt);
      lines.flush(on_line);
      finish(result_of(r));
    } catch (const std::exception& e) {
      finish({{"status", "error"}, {"reason", id_ + " runner: " + e.what()}, {"commands", state_.commands}});
    }
  }

  json result_of(const cp::SpawnResult& r) {
    json res{{"commands", state_.commands}, {"usage", state_.usage()}, {"exit_code", r.exit_code}};
    if (!state_.thread_id.empty()) res["thread_id"] = state_.thread_id;
    res["stream"] = {{"lines", state_.lines},
                     {"malformed_lines", state_.malformed},
                     {"oversized_lines", state_.oversized},
                     {"unknown_types", state_.unknown_types}};
    if (!state_.last_message.empty()) res["last_message"] = state_.last_message.substr(0, 4000);
    std::string how = !r.started           ? "did not start"
                      : r.term_signal != 0 ? "killed by signal " + std::to_string(r.term_signal)
                                           : "exit " + std::to_string(r.exit_code);
    auto set = [&](const char* status, const std::string& reason) {
      res["status"] = status;
      res["reason"] = reason;
      return res;
    };
    if (!breach_.is_null()) {
      res["budget_exceeded"] = breach_;
      return set("failed", "budget_exceeded: " + breach_["budget"].get<std::string>() + " " +
                               breach_["value"].dump() + " > " + breach_["limit"].dump());
    }
    if (r.timed_out) return set("timeout", id_ + " timed out (" + how + ")");
    if (r.cancelled || cancelled_) return set("cancelled", id_ + " was cancelled (" + how + ")");
    if (!r.started) return set("error", "cannot start " + (opt_argv0_.empty() ? id_ : opt_argv0_));
    if (!state_.terminal) return set("failed", "incomplete stream: no terminal event (" + how + ")");
    if (!state_.terminal_ok)
      return set("failed", "the agent's turn failed: " + state_.terminal_message + " (" + how + ")");
    if (r.exit_code != 0 || r.term_signal != 0)
      return set("failed", "the turn completed but the agent " + how);
    return set("completed", "the agent's turn completed");
  }

  std::string opt_argv0_;
  json breach_;
};

}  // namespace cp::plugins
