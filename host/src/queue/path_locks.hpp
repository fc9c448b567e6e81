// Path locks: before a queued run starts, it takes an exclusive lock on each path its contract may change
// (allowed_paths) within its repository, so two runs that could touch the same files never run at once.
// The locks are part of the queue: a claim records the locks it takes in the same atomic step, and they
// last until the attempt ends, its run is sealed, an admin releases them, or their TTL passes
// (queue_backend.hpp). This file holds the rules: how a path is written down, when two paths overlap, and
// a lock as the readers (GET /api/locks, `cp-host locks list`, the queue's waiting_on) see it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cp::queue {

// The whole repository: what a contract without allowed_paths, or with ".", "**" or a glob that starts at
// the top ("*.md"), locks.
inline constexpr const char* kWholeRepo = ".";

// A path of allowed_paths as a lock names it: "./" prefixes, "." segments and repeated slashes dropped, a
// trailing '/' kept (it says "this folder"); a glob is cut back to the folder before its first wildcard
// ("docs/*.md" locks "docs/"). The whole repository is ".". nullopt, with `why`, for what names no place
// inside the repository: an absolute path, a ".." segment, an empty path, a NUL.
std::optional<std::string> normalise_lock_path(const std::string& path, std::string* why = nullptr);

// Whether two normalised paths of one repository overlap: one is the other, or a folder holding it. Only
// whole segments count: "src" and "src/a.c" overlap, "src" and "srcx" do not, "." overlaps everything.
bool paths_overlap(const std::string& a, const std::string& b);

// Whether two normalised paths name the same place ("src" and "src/").
bool same_lock_path(const std::string& a, const std::string& b);

// The paths a contract's allowed_paths lock, normalised, each once, none inside another of the list
// (["src/", "src/a.c"] locks ["src/"]); ["."] when the list is empty or missing. std::invalid_argument
// naming the entry (by its index) when one is not a path inside the repository.
std::vector<std::string> lock_paths_of(const nlohmann::json& allowed_paths);

// One lock held by a claimed or running attempt.
struct PathLock {
  std::string lock_id;  // "lk-" + 16 hex digits, stable for (item, attempt, repo, path)
  std::string repo;     // the repository's canonical path
  std::string path;     // normalised (normalise_lock_path)
  std::string item_id;
  int attempt = 0;
  std::string run_id;      // empty while the attempt is claimed but not yet named
  std::string since;       // ISO-8601 UTC: when the claim took it
  std::string expires_at;  // ISO-8601 UTC: after this the lock is ignored, and reaped
};

std::string lock_id(const std::string& item_id, int attempt, const std::string& repo,
                    const std::string& path);

// The first lock in `held` that a claim of `paths` in `repo` would overlap; null when none.
const PathLock* find_conflict(const std::vector<PathLock>& held, const std::string& repo,
                              const std::vector<std::string>& paths);

// "lock src/ held by <run id>" (or "by item <item id>" before the run is named): a waiting item's why.
std::string held_by_text(const PathLock& lock);

// {lock_id, repo, path, item_id, attempt, run_id, since, expires_at}: what GET /api/locks lists.
nlohmann::json to_json(const PathLock& lock);

}  // namespace cp::queue
