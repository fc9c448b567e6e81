#include "core/json_simd.hpp"

#include <simdjson.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace cp::core {

using nlohmann::json;

namespace {

// The value nlohmann would build for `e`. nlohmann reads an integer without a sign as unsigned, one with a
// sign as signed; a later duplicate key replaces an earlier one.
json to_nlohmann(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      json out(json::value_t::object);
      auto& members = out.get_ref<json::object_t&>();
      for (auto [key, value] : simdjson::dom::object(e)) members[std::string(key)] = to_nlohmann(value);
      return out;
    }
    case simdjson::dom::element_type::ARRAY: {
      json out(json::value_t::array);
      auto& items = out.get_ref<json::array_t&>();
      for (auto value : simdjson::dom::array(e)) items.push_back(to_nlohmann(value));
      return out;
    }
    case simdjson::dom::element_type::STRING:
      return json(std::string(std::string_view(e)));
    case simdjson::dom::element_type::INT64: {
      const int64_t v = int64_t(e);
      return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v);
    }
    case simdjson::dom::element_type::UINT64:
      return json(uint64_t(e));
    case simdjson::dom::element_type::DOUBLE:
      return json(double(e));
    case simdjson::dom::element_type::BOOL:
      return json(bool(e));
    case simdjson::dom::element_type::NULL_VALUE:
      break;
  }
  return json(nullptr);
}

// A "-0" that is a number of its own (not the start of "-0.5" or "-0e1"): simdjson reads it as 0, which
// would become unsigned.
bool has_negative_zero(std::string_view text) {
  for (size_t at = text.find("-0"); at != std::string_view::npos; at = text.find("-0", at + 2)) {
    const char next = at + 2 < text.size() ? text[at + 2] : '\0';
    if (next != '.' && next != 'e' && next != 'E' && (next < '0' || next > '9')) return true;
  }
  return false;
}

}  // namespace

bool parse_json_simd(const std::string& text, json& out) {
  thread_local simdjson::dom::parser parser;
  thread_local const bool ready = parser.allocate(4096, kJsonSimdMaxDepth) == simdjson::SUCCESS;
  if (!ready) return false;
  const bool padded = text.capacity() - text.size() >= simdjson::SIMDJSON_PADDING;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size(), !padded).get(root) != simdjson::SUCCESS) return false;
  if (has_negative_zero(text)) return false;
  out = to_nlohmann(root);
  return true;
}

}  // namespace cp::core
