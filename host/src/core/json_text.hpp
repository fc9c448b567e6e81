// Reading a text field of a JSON document that may not have it: what a file written by anyone needs.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace cp::core {

// j[key] when `j` is an object holding a string there; "" otherwise (missing, null, another type, or `j`
// not an object). Never throws.
inline std::string text_of(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace cp::core
