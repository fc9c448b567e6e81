// ASCII case folding, the same in every locale: header names, URL schemes, role and file names.
#pragma once

#include <string>
#include <string_view>

namespace cp::core {

// `s` with A-Z turned into a-z; every other byte (UTF-8 included) is left as it is.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

}  // namespace cp::core
