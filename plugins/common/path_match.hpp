// Matching repo-relative paths against allowed_paths entries (header-only, shared by gates).
//   "src/" or "src"   the folder src and everything below it
//   "."               the whole repository
//   "docs/*.md"       glob: '*' and '?' stay within one segment, '**' spans segments
#pragma once

#include <string>
#include <string_view>

namespace cp::plugins {

namespace detail {
inline bool glob(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.substr(0, 2) == "**") {
      std::string_view rest = p.substr(2);
      if (!rest.empty() && rest[0] == '/') rest.remove_prefix(1);
      for (size_t i = 0; i <= s.size(); ++i)
        if (glob(rest, s.substr(i))) return true;
      return false;
    }
    if (p[0] == '*') {
      for (size_t i = 0; i <= s.size(); ++i) {
        if (glob(p.substr(1), s.substr(i))) return true;
        if (i < s.size() && s[i] == '/') break;
      }
      return false;
    }
    if (s.empty()) return false;
    if (p[0] == '?') {
      if (s[0] == '/') return false;
    } else if (p[0] != s[0]) {
      return false;
    }
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}
}  // namespace detail

// `path` must already be normalised (no '.', '..', or leading '/').
inline bool path_allowed(const std::string& pattern_in, const std::string& path) {
  std::string pattern = pattern_in;
  while (pattern.size() > 2 && pattern.compare(0, 2, "./") == 0) pattern.erase(0, 2);
  if (pattern == "." || pattern == "./" || pattern == "**") return true;
  if (pattern.find_first_of("*?") != std::string::npos) return detail::glob(pattern, path);
  while (!pattern.empty() && pattern.back() == '/') pattern.pop_back();
  return path == pattern || (path.size() > pattern.size() && path.compare(0, pattern.size(), pattern) == 0 &&
                             path[pattern.size()] == '/');
}

}  // namespace cp::plugins
