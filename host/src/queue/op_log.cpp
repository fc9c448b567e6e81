#include "queue/op_log.hpp"

#include "core/schema_catalog.hpp"

namespace cp::queue {

using nlohmann::json;

std::set<std::string> kept_by_compaction(const QueueState& state, int64_t keep_terminal_ms, int64_t now) {
  std::set<std::string> keep;
  for (const auto& [id, it] : state.items()) {
    bool recent = false;
    if (it.terminal()) {
      const Attempt* a = it.current();
      std::string end = a && !a->finished_at.empty() ? a->finished_at : it.enqueued_at;
      recent = now - parse_iso_ms(end) < keep_terminal_ms;
    }
    if (!it.terminal() || recent) keep.insert(id);
  }
  for (const auto& [id, it] : state.items())
    if (keep.count(id))
      for (const auto& dep : it.depends_on) keep.insert(dep);
  return keep;
}

namespace {

std::string without_nul(const std::string& s) {
  if (s.find('\0') == std::string::npos) return s;
  std::string out;
  for (char c : s) {
    if (c == '\0')
      out += "\xEF\xBF\xBD";  // U+FFFD
    else
      out += c;
  }
  return out;
}

}  // namespace

void strip_nul(json& op) {
  if (op.is_string()) {
    op = without_nul(op.get_ref<const std::string&>());
  } else if (op.is_array()) {
    for (auto& v : op) strip_nul(v);
  } else if (op.is_object()) {
    json fixed = json::object();
    for (auto it = op.begin(); it != op.end(); ++it) {
      json v = it.value();
      strip_nul(v);
      fixed[without_nul(it.key())] = std::move(v);
    }
    op = std::move(fixed);
  }
}

std::optional<json> parse_op(const std::string& text, std::string& problem) {
  json op = json::parse(text, nullptr, false);
  if (op.is_discarded()) {
    problem = "not JSON";
    return std::nullopt;
  }
  if (std::string p = op_schema_problem(op); !p.empty()) {
    problem = "does not fit queue_item.schema.json: " + p;
    return std::nullopt;
  }
  return op;
}

std::string op_schema_problem(const json& op) {
  auto v = core::schema("queue_item").validate(op);
  if (v.empty()) return {};
  return (v[0].pointer.empty() ? "/" : v[0].pointer) + ": " + v[0].message;
}

}  // namespace cp::queue
