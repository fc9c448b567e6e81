// Asking a planner plugin (ABI 1.4, kind planner) for its next answer, fail-closed.
//
// The planner's output is evidence, never trusted: it must parse, fit schemas/planner_output.schema.json
// and, for a plan, schemas/plan_bundle.schema.json; anything else is `refused`, with what broke where and
// the raw text kept. A planner that fails, crashes (isolated: its worker dies; the host goes on), hangs
// past the deadline or floods its output is an `error`. Before the planner is asked, the probes it
// declares as capabilities ("probe:<id>", as runners do: the llm planner names provider_capability) are
// run; one that does not answer ok makes the call an `error` naming the probe and its message (an
// unreachable provider or a refused key is said before any plan is asked of it). An ok answer is kept, in
// this process, for the ttl the probe gave it; an answer that is not ok never is.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

namespace cp::plugin {
class Registry;
}

namespace cp::control {

enum class PlannerReplyKind { questions, plan, no_match, refused, error };

std::string_view planner_reply_kind_name(PlannerReplyKind kind);

struct PlannerReply {
  PlannerReplyKind kind = PlannerReplyKind::error;
  std::string planner_id;
  std::string task_pack;  // the pack the planner chose or worked with; "" when none
  // questions: [{id, field, text, choices?, problem?}] as the planner asked them.
  nlohmann::json questions = nlohmann::json::array();
  nlohmann::json plan;  // plan: the plan bundle (valid against plan_bundle.schema.json); null otherwise
  std::string reason;   // no_match: why no pack fits
  std::string message;  // a line for the person, when the planner gave one
  nlohmann::json suggestions = nlohmann::json::array();  // no_match: [{task_pack, title?, why?}]
  // refused: every violation, [{pointer, rule, message}] (pointers into the planner's output).
  nlohmann::json violations = nlohmann::json::array();
  std::string raw;             // the planner's output text as it came, at most kMaxRawBytes (evidence)
  bool raw_truncated = false;  // the output was longer than kMaxRawBytes
  std::string error;           // refused / error: what went wrong, where, and what to do
  nlohmann::json usage;        // what the planner reported of its model use ({prompt_tokens, ...}), or null
  std::chrono::milliseconds duration{0};
  bool ok() const { return kind != PlannerReplyKind::refused && kind != PlannerReplyKind::error; }
};

inline constexpr size_t kMaxRawBytes = 1u << 20;

// Asks planner `planner_id` of `registry` to answer `input` (schemas/planner_input.schema.json; an input
// that does not fit its schema is an `error` before any planner runs). An in-process planner is told to
// stop (ctx cancelled) when `deadline` passes and its answer is then an `error` even if it comes later; an
// isolated planner's worker is killed at the deadline.
PlannerReply call_planner(const plugin::Registry& registry, const std::string& planner_id,
                          const nlohmann::json& input, std::chrono::milliseconds deadline);

// The reply as JSON: {kind, planner, task_pack, questions, plan, reason, message, suggestions, violations,
// raw, raw_truncated, error, usage, duration_ms}.
nlohmann::json to_json(const PlannerReply& reply);

// A planner input for `request`: the valid task packs of `root` (their documents), task_pack ("" = null),
// the answers and the questions asked so far, the intake id. The caller adds nothing else.
struct PlannerInputSpec {
  std::string request;
  std::string repo;
  std::string task_pack;  // "" = let the planner choose
  nlohmann::json answers = nlohmann::json::object();
  nlohmann::json asked = nlohmann::json::array();
  std::string intake_id;
};
nlohmann::json make_planner_input(const std::filesystem::path& root, const PlannerInputSpec& spec);

}  // namespace cp::control
