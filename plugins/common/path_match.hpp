// Matching repo-relative paths against allowed_paths entries (header-only, shared by gates).
//   "src/" or "src"   the folder src and everything below it
//   "."               the whole repository
//   "docs/*.md"       glob: '*' and '?' stay within one segment, '**' spans segments
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cp::plugins {

namespace detail {

// One unit of a glob pattern. A "**" also takes the '/' that follows it, so "a/**/b" matches "a/b".
struct GlobToken {
  enum Kind { literal, one, star, globstar } kind;
  char c = 0;
};

inline std::vector<GlobToken> glob_tokens(std::string_view p) {
  std::vector<GlobToken> out;
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, 2, "**") == 0) {
      out.push_back({GlobToken::globstar});
      i += 2;
      if (i < p.size() && p[i] == '/') ++i;
    } else if (p[i] == '*') {
      out.push_back({GlobToken::star});
      ++i;
    } else if (p[i] == '?') {
      out.push_back({GlobToken::one});
      ++i;
    } else {
      out.push_back({GlobToken::literal, p[i]});
      ++i;
    }
  }
  return out;
}

// Dynamic programming over (pattern token, path position), one row per token from the end: time is
// tokens x path length and memory one row, whatever the stars. A recursive matcher that retries every
// split point of every star is exponential in the number of '**' parts, and patterns come from contracts.
inline bool glob(std::string_view p, std::string_view s) {
  std::vector<GlobToken> tokens = glob_tokens(p);
  const size_t n = s.size();
  // next[j]: do tokens after the current one match s[j..]? Initially: the empty pattern matches only "".
  std::vector<char> next(n + 1, 0), cur(n + 1, 0);
  next[n] = 1;
  for (size_t t = tokens.size(); t-- > 0;) {
    const GlobToken& tok = tokens[t];
    cur[n] = (tok.kind == GlobToken::star || tok.kind == GlobToken::globstar) ? next[n] : 0;
    for (size_t j = n; j-- > 0;) {
      switch (tok.kind) {
        case GlobToken::literal:
          cur[j] = s[j] == tok.c && next[j + 1];
          break;
        case GlobToken::one:
          cur[j] = s[j] != '/' && next[j + 1];
          break;
        case GlobToken::star:  // empty, or one more character of this segment
          cur[j] = next[j] || (s[j] != '/' && cur[j + 1]);
          break;
        case GlobToken::globstar:  // empty, or one more character of any segment
          cur[j] = next[j] || cur[j + 1];
          break;
      }
    }
    std::swap(cur, next);
  }
  return next[0];
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
