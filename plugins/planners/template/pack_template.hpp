// A task pack's chain made concrete: every {{field}} of its texts replaced by the field's value. An array
// item that is exactly "{{field}}" takes a list field's items (or the one value; nothing when the field has
// none), so "allowed_paths": ["{{paths}}"] becomes the paths given. A step with "when": FIELD is kept only
// when that field has a value (not empty, not false, not 0).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace cp::planners {

using nlohmann::json;

// At most `max` bytes of `s`, never cutting a UTF-8 character in two.
inline std::string cut_utf8(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max > 3 ? max - 3 : 0;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

inline std::string as_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ", ") + as_text(x);
    return out;
  }
  return "";
}

inline bool has_value(const json& values, const std::string& name) {
  if (!values.contains(name)) return false;
  const json& v = values[name];
  if (v.is_string() || v.is_array()) return !v.empty();
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<long long>() != 0;
  return !v.is_null();
}

inline std::string fill(const std::string& text, const json& values) {
  std::string out;
  size_t at = 0;
  while (true) {
    size_t open = text.find("{{", at);
    size_t close = open == std::string::npos ? open : text.find("}}", open + 2);
    if (close == std::string::npos) {
      out += text.substr(at);
      return out;
    }
    out += text.substr(at, open - at);
    std::string name = text.substr(open + 2, close - open - 2);
    if (values.contains(name)) out += as_text(values[name]);
    at = close + 2;
  }
}

inline json render(const json& node, const json& values) {
  if (node.is_string()) return fill(node.get<std::string>(), values);
  if (node.is_array()) {
    json out = json::array();
    for (const auto& item : node) {
      if (item.is_string()) {
        const std::string s = item.get<std::string>();
        if (s.size() > 4 && s.rfind("{{", 0) == 0 && s.find("}}") == s.size() - 2 &&
            s.find("{{", 2) == std::string::npos) {
          const std::string name = s.substr(2, s.size() - 4);
          if (!has_value(values, name)) continue;
          const json& v = values[name];
          if (v.is_array())
            for (const auto& x : v) out.push_back(x);
          else
            out.push_back(as_text(v));
          continue;
        }
      }
      out.push_back(render(item, values));
    }
    return out;
  }
  if (node.is_object()) {
    json out = json::object();
    for (auto it = node.begin(); it != node.end(); ++it) out[it.key()] = render(it.value(), values);
    return out;
  }
  return node;
}

// The plan bundle of `pack` for `values` (the fields, complete and checked).
inline json render_plan(const json& pack, const json& values) {
  const json& chain = pack["chain"];
  json steps = json::array();
  for (const auto& s : chain["steps"]) {
    if (s.contains("when") && !has_value(values, s["when"].get<std::string>())) continue;
    json step = render(s, values);
    step.erase("when");
    steps.push_back(std::move(step));
  }
  json plan{{"schema_version", 1},
            {"task_pack", pack["name"]},
            {"title", cut_utf8(fill(chain["title"].get<std::string>(), values), 200)},
            {"summary", cut_utf8(fill(chain["summary"].get<std::string>(), values), 4000)},
            {"fields", values},
            {"steps", steps}};
  for (const char* k : {"baseline_ref", "workflow_id"})
    if (chain.contains(k)) plan[k] = fill(chain[k].get<std::string>(), values);
  if (chain.contains("require_pm_loop")) plan["require_pm_loop"] = chain["require_pm_loop"];
  return plan;
}

}  // namespace cp::planners
