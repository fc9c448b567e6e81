// Paths in the API: matching a request's path against the route patterns, decoding its segments, and
// resolving an untrusted relative path inside a run's folder.
#include "serve/api.hpp"
#include "serve/routes.hpp"

#include <sys/stat.h>

namespace cp::serve {

namespace fs = std::filesystem;

namespace {

// The segments of a path as views into it; `out` keeps its capacity from one call to the next.
void split_views(std::string_view path, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string_view> views;
  split_views(path, views);
  return {views.begin(), views.end()};
}

}  // namespace

bool match_route(const std::string& pattern, const std::string& path,
                 std::map<std::string, std::string>& params) {
  // Every request is matched against the whole route table: segments are views, and the vectors keep
  // their capacity from one call to the next, so a miss allocates nothing.
  thread_local std::vector<std::string_view> ps, xs;
  split_views(pattern, ps);
  split_views(path, xs);
  params.clear();
  for (size_t i = 0; i < ps.size(); ++i) {
    std::string_view p = ps[i];
    bool var = p.size() > 2 && p.front() == '{' && p.back() == '}';
    if (var && p == "{path}" && i + 1 == ps.size()) {
      if (i >= xs.size()) return false;
      std::string rest;
      for (size_t k = i; k < xs.size(); ++k) {
        if (k > i) rest += '/';
        rest += xs[k];
      }
      if (rest.empty()) return false;
      params["path"] = rest;
      return true;
    }
    if (i >= xs.size()) return false;
    if (var) {
      if (xs[i].empty()) return false;
      params[std::string(p.substr(1, p.size() - 2))] = std::string(xs[i]);
    } else if (p != xs[i]) {
      return false;
    }
  }
  return ps.size() == xs.size();
}

std::optional<std::string> url_decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char h) -> int {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return std::nullopt;
      out += d;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<fs::path> safe_subpath(const fs::path& base, const std::string& rel, std::string& why) {
  if (rel.empty()) {
    why = "empty path";
    return std::nullopt;
  }
  if (rel.front() == '/') {
    why = "absolute paths are refused";
    return std::nullopt;
  }
  if (rel.find('\0') != std::string::npos || rel.find('\\') != std::string::npos) {
    why = "NUL and backslash are refused in paths";
    return std::nullopt;
  }
  fs::path cur = base;
  struct stat st {};
  if (::lstat(base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    why = "no such folder";
    return std::nullopt;
  }
  for (const auto& seg : split_path(rel)) {
    if (seg.empty() || seg == "." || seg == "..") {
      why = "'..', '.' and empty segments are refused";
      return std::nullopt;
    }
    cur /= seg;
    if (::lstat(cur.c_str(), &st) != 0) {
      why = "not found";
      return std::nullopt;
    }
    if (S_ISLNK(st.st_mode)) {
      why = "symlinks are refused";
      return std::nullopt;
    }
  }
  return cur;
}

}  // namespace cp::serve
