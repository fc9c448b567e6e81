// What an agent's stdout means, apart from any process: lines are split, checked (nesting depth, JSON
// object) and handed to the runner's parser, which turns them into run events and the StreamState the
// runner's result is made of. No host and no process here, so the parsers run the same under the runner,
// the unit tests and the fuzzers (fuzz/). Header-only: each plugin compiles its own copy.
#pragma once

#include <cortexpilot/json_guard.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace cp::plugins {

using nlohmann::json;

// A token count an agent CLI reports under `key` of `usage`: a non-negative integer, at most 10^15. A count
// too big for any integer (a float such as 8e35) is that most, so it breaks every budget instead of turning
// into undefined behaviour; a negative count or one that is not a number is 0.
inline constexpr long long kMostTokens = 1000000000000000LL;
inline long long token_count(const json& usage, const char* key) {
  constexpr long long kMost = kMostTokens;
  if (!usage.is_object() || !usage.contains(key)) return 0;
  const json& v = usage[key];
  if (v.is_number_unsigned()) {
    const auto n = v.get<json::number_unsigned_t>();
    return n > static_cast<json::number_unsigned_t>(kMost) ? kMost : static_cast<long long>(n);
  }
  if (v.is_number_integer()) {
    const long long n = v.get<long long>();
    return n < 0 ? 0 : n > kMost ? kMost : n;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(d > 0)) return 0;  // negative, zero or NaN
    return d >= static_cast<double>(kMost) ? kMost : static_cast<long long>(d);
  }
  return 0;
}

// `total` + `n`, both counts as token_count gives them, held at kMostTokens (a stream of many huge counts
// never overflows the sum).
inline long long add_tokens(long long total, long long n) {
  return total >= kMostTokens - n ? kMostTokens : total + n;
}

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

// Base of the codex and claude parsers. Not thread-safe: one parser per run, fed from one thread.
class StreamParser {
 public:
  struct Sinks {
    std::function<void(const std::string& type, const json& payload)> emit;  // must not throw
    std::function<void(const std::string& line)> log;
  };
  StreamParser(std::string runner_id, StreamState& state, Sinks sinks)
      : id_(std::move(runner_id)), state_(state), sinks_(std::move(sinks)) {}
  virtual ~StreamParser() = default;
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  // One line of stdout, without its '\n'. Never throws: a line that is not a JSON object (or nests deeper
  // than CP_JSON_MAX_DEPTH, refused unparsed), or whose shape the parser does not expect, is counted as
  // malformed.
  void line(std::string_view line) {
    ++state_.lines;
    if (line.empty()) return;
    if (cp_json_depth(line.data(), line.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH) {
      ++state_.malformed;
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
  }

 protected:
  // One JSON object line of the agent's stdout.
  virtual void on_event(const json& event) = 0;

  void emit(const std::string& type, const json& payload) {
    if (sinks_.emit) sinks_.emit(type, payload);
  }
  // Logs one line per unknown type, once.
  void unknown(const std::string& type) {
    if (state_.unknown_types.insert(type).second && sinks_.log)
      sinks_.log(id_ + ": unknown stream event type '" + type + "' kept raw, not interpreted");
  }
  // Records a command the agent ran, for the forbidden_actions gate and the COMMAND_EXECUTED event.
  void command(const std::string& cmd, json exit_code, const std::string& status) {
    state_.commands.push_back({{"command", cmd}, {"status", status}, {"source", id_}});
    if (exit_code.is_number_integer()) state_.commands.back()["exit_code"] = exit_code;
    json ev{{"command", cmd}, {"status", status}, {"source", id_}};
    if (exit_code.is_number_integer()) ev["exit_code"] = exit_code;
    emit(status == "declined" ? "COMMAND_DECLINED" : "COMMAND_EXECUTED", ev);
  }

  std::string id_;
  StreamState& state_;
  Sinks sinks_;
};

}  // namespace cp::plugins
