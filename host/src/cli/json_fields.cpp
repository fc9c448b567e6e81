#include "cli/json_fields.hpp"

#include "cli/read_views.hpp"

namespace cp::cli {

using nlohmann::json;

namespace {

const json& field_of_kind(const json& j, const char* key, json::value_t kind) {
  static const json kEmptyObject = json::object(), kEmptyArray = json::array();
  if (j.is_object()) {
    auto it = j.find(key);
    if (it != j.end() && it->type() == kind) return *it;
  }
  return kind == json::value_t::array ? kEmptyArray : kEmptyObject;
}

}  // namespace

std::string text_of(const json& j, const char* key, const std::string& fallback) {
  if (j.is_object()) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) return terminal_safe(it->get<std::string>());
  }
  return terminal_safe(fallback);
}

const json& object_of(const json& j, const char* key) {
  return field_of_kind(j, key, json::value_t::object);
}

const json& array_of(const json& j, const char* key) {
  return field_of_kind(j, key, json::value_t::array);
}

unsigned long long count_of(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return 0;
  // Parsed text gives unsigned numbers, numbers built in this process signed ones: both count.
  if (it->is_number_unsigned()) return it->get<unsigned long long>();
  const long long v = it->get<long long>();
  return v < 0 ? 0 : static_cast<unsigned long long>(v);
}

std::string number_of(const json& j, const char* key, const std::string& fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->dump() : fallback;
}

bool flag_of(const json& j, const char* key, bool fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

}  // namespace cp::cli
