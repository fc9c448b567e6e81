#include "control/kept_worktrees.hpp"

#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

uint64_t counted_bytes(const struct stat& st) {
  uint64_t on_disk = static_cast<uint64_t>(st.st_blocks) * 512;
  uint64_t apparent = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  return std::max(on_disk, apparent);
}

// Adds what lies beneath the folder open on `fd` (closing it) to `size`. Every folder is opened relative to
// its parent with O_NOFOLLOW: a folder swapped for a link while the walk runs is not entered. `left` is the
// number of entries the walk may still look at.
void walk(int fd, int depth, int max_depth, uint64_t& left, WorktreeSize& size) {
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    size.complete = false;
    return;
  }
  while (struct dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
    if (left == 0) {
      size.complete = false;
      break;
    }
    --left;
    ++size.entries;
    struct stat st {};
    if (::fstatat(::dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    size.bytes += counted_bytes(st);
    if (!S_ISDIR(st.st_mode)) continue;
    if (depth + 1 >= max_depth) {
      size.complete = false;
      continue;
    }
    int sub = ::openat(::dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      size.complete = false;
      continue;
    }
    walk(sub, depth + 1, max_depth, left, size);
    if (left == 0) size.complete = false;
  }
  ::closedir(d);
}

std::string text(const json& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void add_run(const fs::path& root, KeptWorktree& w) {
  if (!store::valid_run_id(w.name)) return;
  auto dir = store::find_run(root, w.name);
  if (!dir) return;
  w.run_exists = true;
  json m = core::read_json_file(*dir / "manifest.json");
  w.run = json{{"run_id", w.name}, {"status", m.is_object() ? text(m, "status") : std::string("unreadable")}};
  if (!m.is_object()) return;
  for (const char* k : {"task_id", "verdict", "reason", "created_at", "sealed_at", "worktree_kept"})
    if (m.contains(k)) w.run[k] = m[k];
  if (m.contains("evidence") && m["evidence"].is_object()) {
    w.evidence = m["evidence"];
    w.promoted = text(w.evidence, "decision") == "promoted";
  }
}

}  // namespace

WorktreeListing list_kept_worktrees(const fs::path& root, const WorktreeListLimits& limits) {
  WorktreeListing out;
  const fs::path dir = core::worktrees_dir(root);
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (names.size() >= limits.max_worktrees) {
      out.truncated = true;
      break;
    }
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  uint64_t total_left = limits.max_entries_total;
  for (const auto& name : names) {
    KeptWorktree w;
    w.name = name;
    w.path = dir / name;
    struct stat st {};
    if (::lstat(w.path.c_str(), &st) != 0) continue;  // gone since listed
    w.modified_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    w.size.bytes = counted_bytes(st);
    if (S_ISLNK(st.st_mode)) {
      w.problem = "a symbolic link, not a worktree folder; not followed";
    } else if (!S_ISDIR(st.st_mode)) {
      w.problem = "not a folder";
    } else {
      uint64_t left = std::min(limits.max_entries_per_worktree, total_left);
      const uint64_t given = left;
      int fd = ::open(w.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        w.size.complete = false;
      else
        walk(fd, 0, limits.max_depth, left, w.size);
      total_left -= given - left;
    }
    add_run(root, w);
    out.worktrees.push_back(std::move(w));
  }
  return out;
}

json to_json(const KeptWorktree& w, int64_t now_ms) {
  json j{{"run_id", w.name},
         {"path", w.path.string()},
         {"modified_at", core::iso_from_ms(w.modified_ms)},
         {"size_bytes", w.size.bytes},
         {"entries", w.size.entries},
         {"size_complete", w.size.complete},
         {"run_exists", w.run_exists},
         {"promoted", w.promoted}};
  if (!w.problem.empty()) j["problem"] = w.problem;
  // Age counts from the run's creation when the run is known (the worktree was made then), else from the
  // folder's last change.
  std::string since = w.run_exists ? w.run.value("created_at", "") : std::string();
  int64_t from = since.empty() ? -1 : core::parse_iso_ms(since);
  if (from < 0) {
    from = w.modified_ms;
    since = core::iso_from_ms(w.modified_ms);
  }
  j["since"] = since;
  j["age_sec"] = std::max<int64_t>(0, (now_ms - from) / 1000);
  j["run"] = w.run_exists ? w.run : json(nullptr);
  j["evidence"] = w.evidence;
  return j;
}

}  // namespace cp::control
