// The command allowlist (policies/command_allowlist.json) as runners apply it: a command line is split into
// words the way a POSIX shell would (no shell ever runs it, so ';', '|' or '$(...)' cannot smuggle in a
// second command), and admitted only when argv[0] equals an entry's program exactly (a bare name admits
// only the bare name, found in PATH; a path entry only that path) and the arguments match its args_regex.
// Fail-closed: anything that cannot be split or matched is refused, with the reason.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace cp::plugins {

// Splits a command line like a POSIX shell would split words: whitespace, '...', "...", backslash.
// Returns false on an unterminated quote.
inline bool split_words(const std::string& s, std::vector<std::string>& out) {
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        cur += c;
    } else if (quote == '"') {
      if (c == '"')
        quote = 0;
      else if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\'))
        cur += s[++i];
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(cur), cur.clear(), in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) return false;
  if (in_word) out.push_back(cur);
  return true;
}

struct AllowEntry {
  std::string id, program;
  std::optional<std::regex> args;
};

class CommandAllowlist {
 public:
  explicit CommandAllowlist(const nlohmann::json& policy) {
    for (const auto& e : policy.value("entries", nlohmann::json::array())) {
      AllowEntry a{e.value("id", ""), e.value("program", ""), std::nullopt};
      if (e.contains("args_regex"))
        a.args.emplace(e["args_regex"].get<std::string>(), std::regex::ECMAScript);
      entries_.push_back(std::move(a));
    }
  }

  // The entry admitting `line` (argv filled), or nullptr with `denial` saying why not.
  const AllowEntry* admit(const std::string& line, std::vector<std::string>& argv,
                          std::string& denial) const {
    argv.clear();
    if (!split_words(line, argv) || argv.empty()) {
      denial = "cannot split into words (unterminated quote or empty)";
      return nullptr;
    }
    std::string args;
    for (size_t i = 1; i < argv.size(); ++i) args += (i > 1 ? " " : "") + argv[i];
    for (const auto& a : entries_)
      if (argv[0] == a.program && (!a.args || std::regex_match(args, *a.args))) return &a;
    denial = argv[0].find('/') != std::string::npos
                 ? "program given as a path; only bare names on the allowlist may run"
                 : "not on the command allowlist (policies/command_allowlist.json)";
    return nullptr;
  }

 private:
  std::vector<AllowEntry> entries_;
};

}  // namespace cp::plugins
