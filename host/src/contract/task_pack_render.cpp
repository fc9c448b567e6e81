#include "contract/task_pack_render.hpp"

namespace cp::contract {

using nlohmann::json;

namespace {

// At most `max` bytes of `s`, never cutting a UTF-8 character in two.
std::string cut_rendered_utf8(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max > 3 ? max - 3 : 0;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

std::string field_value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ", ") + field_value_text(x);
    return out;
  }
  return "";
}

bool field_has_value(const json& values, const std::string& name) {
  if (!values.contains(name)) return false;
  const json& v = values[name];
  if (v.is_string() || v.is_array()) return !v.empty();
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<long long>() != 0;
  return !v.is_null();
}

std::string fill_fields(const std::string& text, const json& values) {
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
    if (values.contains(name)) out += field_value_text(values[name]);
    at = close + 2;
  }
}

json render_node(const json& node, const json& values) {
  if (node.is_string()) return fill_fields(node.get<std::string>(), values);
  if (node.is_array()) {
    json out = json::array();
    for (const auto& item : node) {
      if (item.is_string()) {
        const std::string s = item.get<std::string>();
        if (s.size() > 4 && s.rfind("{{", 0) == 0 && s.find("}}") == s.size() - 2 &&
            s.find("{{", 2) == std::string::npos) {
          const std::string name = s.substr(2, s.size() - 4);
          if (!field_has_value(values, name)) continue;
          const json& v = values[name];
          if (v.is_array())
            for (const auto& x : v) out.push_back(x);
          else
            out.push_back(field_value_text(v));
          continue;
        }
      }
      out.push_back(render_node(item, values));
    }
    return out;
  }
  if (node.is_object()) {
    json out = json::object();
    for (auto it = node.begin(); it != node.end(); ++it) out[it.key()] = render_node(it.value(), values);
    return out;
  }
  return node;
}

}  // namespace

json task_pack_values(const json& pack, const json& fields) {
  json values = fields.is_object() ? fields : json::object();
  for (const auto& f : pack.value("fields", json::array()))
    if (f.is_object() && f.contains("name") && f["name"].is_string() && f.contains("default") &&
        !values.contains(f["name"].get<std::string>()))
      values[f["name"].get<std::string>()] = f["default"];
  return values;
}

json render_task_pack_plan(const json& pack, const json& values) {
  const json& chain = pack.at("chain");
  json steps = json::array();
  for (const auto& s : chain.value("steps", json::array())) {
    if (s.contains("when") && s["when"].is_string() && !field_has_value(values, s["when"].get<std::string>()))
      continue;
    json step = render_node(s, values);
    step.erase("when");
    steps.push_back(std::move(step));
  }
  json plan{{"schema_version", 1},
            {"task_pack", pack.value("name", "")},
            {"title", cut_rendered_utf8(fill_fields(chain.value("title", ""), values), 200)},
            {"summary", cut_rendered_utf8(fill_fields(chain.value("summary", ""), values), 4000)},
            {"fields", values},
            {"steps", steps}};
  for (const char* k : {"baseline_ref", "workflow_id"})
    if (chain.contains(k) && chain[k].is_string()) plan[k] = fill_fields(chain[k].get<std::string>(), values);
  if (chain.contains("require_pm_loop")) plan["require_pm_loop"] = chain["require_pm_loop"];
  return plan;
}

}  // namespace cp::contract
