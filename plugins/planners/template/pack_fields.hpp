// A task pack's fields as the template planner reads them: an answer (or a value found in the request) made
// into the field's type, then checked against its type, choices and pattern. The host checks the plan's
// fields again on its own (contract/task_packs.cpp); this is what lets the planner ask again, saying why.
#pragma once

#include <re2/re2.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cp::planners {

using nlohmann::json;

inline std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

inline std::string field_type(const json& field) {
  return field.contains("type") && field["type"].is_string() ? field["type"].get<std::string>() : "string";
}

// Splits a text answer for a list field: paths on commas, spaces and line breaks; commands on line breaks.
inline json split_list(const std::string& text, bool paths) {
  json out = json::array();
  std::string cur;
  auto flush = [&] {
    std::string t = trim(cur);
    if (!t.empty()) out.push_back(t);
    cur.clear();
  };
  for (char c : text) {
    if (c == '\n' || (paths && (c == ',' || c == ' ' || c == '\t')))
      flush();
    else
      cur += c;
  }
  flush();
  return out;
}

// The answer in the field's type; what cannot be read as that type is returned as given, for the check to
// refuse with its reason.
inline json normalize(const json& field, const json& value) {
  const std::string type = field_type(field);
  if (value.is_string()) {
    const std::string t = trim(value.get<std::string>());
    if (type == "paths" || type == "commands") return split_list(value.get<std::string>(), type == "paths");
    if (type == "integer" && !t.empty() && t.size() < 18 &&
        t.find_first_not_of("0123456789") == std::string::npos)
      return std::stoll(t);
    if (type == "boolean") {
      std::string l;
      for (char c : t) l += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      if (l == "yes" || l == "y" || l == "true") return true;
      if (l == "no" || l == "n" || l == "false") return false;
    }
    if (type == "choice")
      for (const auto& c : field.value("choices", json::array())) {
        std::string a = c.get<std::string>(), b = t;
        for (auto* s : {&a, &b})
          for (auto& ch : *s) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
        if (a == b) return c;
      }
    return type == "text" ? json(trim(value.get<std::string>())) : json(t);
  }
  if ((type == "path" || type == "command") && value.is_array() && value.size() == 1) return value[0];
  return value;
}

inline bool path_ok(const std::string& p, std::string& why) {
  if (p.empty() || p.size() > 1000) return why = "give a path of 1 to 1000 characters", false;
  if (p[0] == '/')
    return why = "'" + p + "' starts with '/': give a path relative to the repository root", false;
  if (p.find('\n') != std::string::npos) return why = "a path holds no line break", false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0)
      return why = "'" + p + "' leaves the repository ('..'): give a path inside it", false;
    start = end + 1;
  }
  return true;
}

// Whether `value` (normalized) is acceptable for `field`; `why` says what to change when it is not.
inline bool value_ok(const json& field, const json& value, std::string& why) {
  const std::string type = field_type(field);
  const size_t max = field.contains("max_length") && field["max_length"].is_number_unsigned()
                         ? field["max_length"].get<size_t>()
                         : (type == "text" ? 20000 : 2000);
  std::vector<std::string> texts;
  if (type == "integer") {
    if (!value.is_number_integer()) return why = "answer with a whole number", false;
  } else if (type == "boolean") {
    if (!value.is_boolean()) return why = "answer yes or no", false;
  } else if (type == "paths" || type == "commands") {
    if (!value.is_array() || value.empty() || value.size() > 64)
      return why = std::string("give 1 to 64 ") + (type == "paths" ? "paths" : "commands, one a line"), false;
    for (const auto& v : value) {
      if (!v.is_string()) return why = "every item must be a text", false;
      texts.push_back(v.get<std::string>());
      if (type == "paths" && !path_ok(texts.back(), why)) return false;
      if (type == "commands" && (texts.back().size() > max || texts.back().find('\n') != std::string::npos))
        return why = "each command is one line of at most " + std::to_string(max) + " characters", false;
    }
  } else {
    if (!value.is_string()) return why = "answer with a text", false;
    const std::string s = value.get<std::string>();
    texts.push_back(s);
    if (s.empty()) return why = "the answer is empty", false;
    if (s.size() > max)
      return why = "the answer is longer than " + std::to_string(max) + " characters", false;
    if (type == "path" && !path_ok(s, why)) return false;
    if (type != "text" && (s.find('\n') != std::string::npos || s.find('\r') != std::string::npos))
      return why = "answer on one line", false;
    if (type == "choice") {
      bool listed = false;
      for (const auto& c : field.value("choices", json::array())) listed = listed || c == value;
      if (!listed) return why = "choose one of " + field.value("choices", json::array()).dump(), false;
    }
  }
  if (field.contains("pattern") && field["pattern"].is_string()) {
    RE2::Options o;
    o.set_log_errors(false);
    RE2 re(field["pattern"].get<std::string>(), o);
    if (!re.ok()) return why = "the pack's pattern for this field does not compile", false;
    for (const auto& t : texts)
      if (!RE2::FullMatch(t, re))
        return why = "'" + t.substr(0, 100) + "' does not have the expected form (" +
                     field["pattern"].get<std::string>() + ")",
               false;
  }
  return true;
}

// A value for `field` found in the request's words, or null: the whole request, or the first capture group
// (else the whole match) of the field's extract pattern, case-insensitive.
inline json extract(const json& field, const std::string& request) {
  if (!field.contains("extract") || !field["extract"].is_object()) return nullptr;
  const json& x = field["extract"];
  if (x.value("whole_request", false)) return trim(request);
  if (!x.contains("pattern") || !x["pattern"].is_string()) return nullptr;
  RE2::Options o;
  o.set_log_errors(false);
  o.set_case_sensitive(false);
  RE2 re(x["pattern"].get<std::string>(), o);
  if (!re.ok()) return nullptr;
  re2::StringPiece input(request), groups[2];
  int n = std::min(re.NumberOfCapturingGroups(), 1);
  if (!re.Match(input, 0, input.size(), RE2::UNANCHORED, groups, n + 1)) return nullptr;
  const re2::StringPiece& hit = n == 1 && groups[1].data() ? groups[1] : groups[0];
  std::string s = trim(std::string(hit.data(), hit.size()));
  if (s.empty()) return nullptr;
  return s;
}

}  // namespace cp::planners
