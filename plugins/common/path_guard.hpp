// Path containment for first-party plugins: is a user-supplied relative path really inside a base folder
// once '..' and symlinks are resolved? Shared by gates that judge paths (header-only: plugins are separate
// libraries and must not depend on the host's code).
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

namespace cp::plugins {

// True when `p` is `base` itself or lies below it. Both must already be absolute and normalised.
inline bool is_within(const std::filesystem::path& base, const std::filesystem::path& p) {
  auto b = base.lexically_normal();
  auto q = p.lexically_normal();
  auto bi = b.begin(), qi = q.begin();
  for (; bi != b.end(); ++bi, ++qi) {
    if (bi->empty()) continue;  // trailing separator of a folder path
    if (qi == q.end() || *bi != *qi) return false;
  }
  return true;
}

// Resolves `relative` against `base` the way the filesystem would (symlinks followed as far as they exist)
// and says whether the result stays inside `base`. `why` explains a refusal.
inline bool resolve_inside(const std::filesystem::path& base, const std::string& relative,
                           std::filesystem::path& resolved, std::string& why) {
  std::filesystem::path rel(relative);
  if (rel.is_absolute()) {
    why = "absolute path";
    return false;
  }
  std::error_code ec;
  std::filesystem::path real_base = std::filesystem::weakly_canonical(base, ec);
  if (ec) {
    why = "base folder cannot be resolved: " + ec.message();
    return false;
  }
  resolved = std::filesystem::weakly_canonical(real_base / rel, ec);
  if (ec) {
    why = "cannot be resolved: " + ec.message();
    return false;
  }
  if (!is_within(real_base, resolved)) {
    why = "resolves outside " + real_base.string() + " (to " + resolved.string() + ")";
    return false;
  }
  return true;
}

}  // namespace cp::plugins
