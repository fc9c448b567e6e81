// Forbidden actions (policies/forbidden_actions.json, named by the contract's `forbidden_actions`) as one
// matcher for everyone who judges a command: the runners and the acceptance_tests gate before they start
// one, the forbidden_actions gate afterwards on what the run (or an agent CLI) reports it executed. Like the
// allowlist it is a policy check on the command's text and words, not the boundary.
//
// Patterns are RE2 (linear time in the text, whatever the pattern; no backreferences or lookaround), so a
// long command cannot stall or crash the judge. A command matches a rule when the pattern is found in its
// text as given or in its words joined by single spaces (quotes and backslashes removed, so `g'i't push`
// is seen as `git push`).
#pragma once

#include "command_policy.hpp"

#include <re2/re2.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cp::plugins {

// Compiles an RE2 pattern or throws std::invalid_argument naming `what`.
inline std::shared_ptr<const re2::RE2> compile_pattern(const std::string& pattern, const std::string& what) {
  RE2::Options o;
  o.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(pattern, o);
  if (!re->ok())
    throw std::invalid_argument(what + ": pattern does not compile (RE2 syntax): " + re->error());
  return re;
}

inline bool found_in(const re2::RE2& re, std::string_view text) {
  return RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), re);
}

// Does `re` match the command: its text, or its words (`argv` when the caller split it already, else the
// text split like a shell would, when it can be)?
inline bool command_matches(const re2::RE2& re, const std::string& text,
                            const std::vector<std::string>* argv) {
  if (found_in(re, text)) return true;
  if (argv) return found_in(re, join_words(*argv));
  std::vector<std::string> words;
  return split_words(text, words) && found_in(re, join_words(words));
}

// The same for a command record as runners and agent CLIs report it: {"command": text, "argv": [...]?}.
inline bool command_matches(const re2::RE2& re, const nlohmann::json& record) {
  std::string text = record.is_object() ? record.value("command", "") : "";
  if (record.is_object() && record.contains("argv") && record["argv"].is_array()) {
    std::vector<std::string> argv;
    for (const auto& a : record["argv"])
      if (a.is_string()) argv.push_back(a.get<std::string>());
    return command_matches(re, text, &argv);
  }
  return command_matches(re, text, nullptr);
}

struct ForbiddenRule {
  std::string id, reason;
  std::shared_ptr<const re2::RE2> re;
};

class ForbiddenActions {
 public:
  ForbiddenActions() = default;

  // The rules a run is held to: each id of contract.forbidden_actions, defined in
  // policies.forbidden_actions.actions. Throws std::invalid_argument for an id with no definition or a
  // pattern RE2 cannot compile: an unchecked rule is not a pass.
  static ForbiddenActions for_run(const nlohmann::json& contract, const nlohmann::json& policies) {
    using nlohmann::json;
    ForbiddenActions f;
    json ids = contract.is_object() ? contract.value("forbidden_actions", json::array()) : json::array();
    json defs = json::array();
    if (policies.is_object() && policies.contains("forbidden_actions") &&
        policies["forbidden_actions"].is_object())
      defs = policies["forbidden_actions"].value("actions", json::array());
    for (const auto& id_json : ids) {
      if (!id_json.is_string()) throw std::invalid_argument("a forbidden action id is not a string");
      std::string id = id_json.get<std::string>();
      const json* def = nullptr;
      for (const auto& d : defs)
        if (d.is_object() && d.value("id", "") == id) def = &d;
      if (!def)
        throw std::invalid_argument("forbidden action '" + id +
                                    "' has no definition in policies/forbidden_actions.json");
      f.add(id, def->value("pattern", ""), def->value("reason", ""));
    }
    return f;
  }

  void add(const std::string& id, const std::string& pattern, const std::string& reason) {
    rules_.push_back({id, reason, compile_pattern(pattern, "forbidden action '" + id + "'")});
  }

  size_t size() const { return rules_.size(); }
  const std::vector<ForbiddenRule>& rules() const { return rules_; }

  // The first rule the command matches, or nullptr.
  const ForbiddenRule* first_match(const std::string& text, const std::vector<std::string>* argv) const {
    for (const auto& r : rules_)
      if (command_matches(*r.re, text, argv)) return &r;
    return nullptr;
  }

  // Why a command matching `r` is refused, for events and reports.
  static std::string denial(const ForbiddenRule& r) {
    return "matches forbidden action '" + r.id + "'" + (r.reason.empty() ? "" : " (" + r.reason + ")");
  }

 private:
  std::vector<ForbiddenRule> rules_;
};

// What a runner checks before it starts a command line: forbidden actions first (the reason then names the
// action, even for a command the allowlist would refuse as well), then the allowlist. Returns the admitting
// entry with argv filled, or nullptr with `denial`.
inline const AllowEntry* admit_command(const CommandAllowlist& allow, const ForbiddenActions& forbidden,
                                       const std::string& line, std::vector<std::string>& argv,
                                       std::string& denial) {
  bool split = split_command(line, argv, denial);
  // An oversized line is refused by its size; the text of any other line is judged even when it
  // cannot be split.
  if (line.size() <= kMaxCommandBytes)
    if (const ForbiddenRule* r = forbidden.first_match(line, split ? &argv : nullptr)) {
      denial = ForbiddenActions::denial(*r);
      return nullptr;
    }
  if (!split) return nullptr;
  return allow.judge(argv, denial);
}

}  // namespace cp::plugins
