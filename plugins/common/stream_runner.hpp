// What the agent runners (codex, claude) share: run one agent CLI through the host's spawn service on a
// worker thread, split its stdout into lines as they arrive, hand each line to the runner's parser, enforce
// the contract's budgets from the stream (the agent is stopped the moment one is broken), and turn the
// stream's terminal event, the exit status and any signal into a runner result
// (schemas/runner_result.schema.json). Header-only: each plugin compiles its own copy.
#pragma once

#include "stream_parser.hpp"
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

// The prompt an agent gets: its role's system prompt (the runner input's role_prompt, which the host
// compiled into the contract, so a role config changed later never reaches a run already compiled), then
// the contract's spec plus the rules it will be judged by.
inline std::string build_prompt(const json& contract, const json& role_prompt = json()) {
  std::string p;
  if (role_prompt.is_object() && role_prompt.contains("text") && role_prompt["text"].is_string() &&
      !role_prompt["text"].get_ref<const std::string&>().empty()) {
    p += role_prompt["text"].get<std::string>();
    if (p.back() != '\n') p += "\n";
    p += "\nYour task:\n";
  }
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
  // The parser of the agent's stdout lines; it lives as long as the run and writes into state_.
  virtual StreamParser& parser() = 0;

  // Never throws: it runs inside the host's stdout callback, where an exception must not cross the ABI.
  void emit(const std::string& type, const json& payload) {
    try {
      ctx_.emit(type, payload.dump());
    } catch (const std::exception& e) {
      ctx_.log(CP_LOG_WARN, id_ + ": event " + type + " refused: " + e.what());
    }
  }
  // What a parser made from this run needs to report back: events into the run, lines into the log.
  StreamParser::Sinks sinks() {
    return {[this](const std::string& type, const json& payload) { emit(type, payload); },
            [this](const std::string& line) { ctx_.log(CP_LOG_INFO, line); }};
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
      auto on_line = [this](std::string_view line) { parser().line(line); };
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
