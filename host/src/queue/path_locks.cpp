#include "queue/path_locks.hpp"

#include "core/sha256.hpp"

#include <stdexcept>

namespace cp::queue {

using nlohmann::json;

namespace {

// What overlap is judged on: the path without its trailing '/', the whole repository as "".
std::string key_of(const std::string& normalised) {
  if (normalised == kWholeRepo) return "";
  std::string k = normalised;
  while (!k.empty() && k.back() == '/') k.pop_back();
  return k;
}

// Whether `outer` is `inner` or a folder above it (keys, as key_of gives them).
bool covers(const std::string& outer, const std::string& inner) {
  if (outer.empty() || outer == inner) return true;
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
         inner[outer.size()] == '/';
}

}  // namespace

std::optional<std::string> normalise_lock_path(const std::string& path, std::string* why) {
  auto refuse = [&](const std::string& w) -> std::optional<std::string> {
    if (why) *why = w;
    return std::nullopt;
  };
  if (path.empty()) return refuse("an empty path names nothing");
  if (path.find('\0') != std::string::npos) return refuse("a path holds no NUL byte");
  if (path.front() == '/')
    return refuse("an absolute path is outside the repository; write it relative to the repository root");
  std::vector<std::string> segments;
  bool folder = path.back() == '/';
  for (size_t at = 0; at <= path.size();) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string seg = path.substr(at, slash - at);
    at = slash + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") return refuse("a '..' segment leaves the folder it names; write the path without it");
    if (seg.find_first_of("*?") != std::string::npos) {
      folder = true;  // a glob locks the folder its first wildcard is in
      break;
    }
    segments.push_back(seg);
  }
  if (segments.empty()) return std::string(kWholeRepo);
  std::string out;
  for (const auto& s : segments) out += (out.empty() ? "" : "/") + s;
  if (folder) out += '/';
  return out;
}

bool paths_overlap(const std::string& a, const std::string& b) {
  const std::string ka = key_of(a), kb = key_of(b);
  return covers(ka, kb) || covers(kb, ka);
}

bool same_lock_path(const std::string& a, const std::string& b) {
  return key_of(a) == key_of(b);
}

std::vector<std::string> lock_paths_of(const json& allowed_paths) {
  if (!allowed_paths.is_array() || allowed_paths.empty()) return {kWholeRepo};
  std::vector<std::string> all;
  for (size_t i = 0; i < allowed_paths.size(); ++i) {
    const json& p = allowed_paths[i];
    std::string why = "not a string";
    std::optional<std::string> n =
        p.is_string() ? normalise_lock_path(p.get<std::string>(), &why) : std::nullopt;
    if (!n)
      throw std::invalid_argument("/allowed_paths/" + std::to_string(i) + " (" + p.dump() +
                                  ") cannot be locked: " + why);
    all.push_back(*n);
  }
  // Keep a path unless another covers it (the first of two equal ones stays), in the contract's order.
  std::vector<std::string> kept;
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string ki = key_of(all[i]);
    bool covered = false;
    for (size_t j = 0; j < all.size() && !covered; ++j) {
      if (j == i) continue;
      const std::string kj = key_of(all[j]);
      covered = kj == ki ? j < i : covers(kj, ki);
    }
    if (!covered) kept.push_back(all[i]);
  }
  return kept;
}

std::string lock_id(const std::string& item_id, int attempt, const std::string& repo,
                    const std::string& path) {
  return "lk-" +
         core::sha256_hex(item_id + "\n" + std::to_string(attempt) + "\n" + repo + "\n" + path).substr(0, 16);
}

const PathLock* find_conflict(const std::vector<PathLock>& held, const std::string& repo,
                              const std::vector<std::string>& paths) {
  for (const auto& lock : held) {
    if (lock.repo != repo) continue;
    for (const auto& p : paths)
      if (paths_overlap(lock.path, p)) return &lock;
  }
  return nullptr;
}

std::string held_by_text(const PathLock& lock) {
  return "lock " + lock.path + " held by " + (lock.run_id.empty() ? "item " + lock.item_id : lock.run_id);
}

json to_json(const PathLock& l) {
  json j{{"lock_id", l.lock_id},      {"repo", l.repo},       {"path", l.path},
         {"item_id", l.item_id},      {"attempt", l.attempt}, {"since", l.since},
         {"expires_at", l.expires_at}};
  j["run_id"] = l.run_id.empty() ? json(nullptr) : json(l.run_id);
  return j;
}

}  // namespace cp::queue
