#include "retention/lane_usage.hpp"

#include "retention/retention.hpp"

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

namespace cp::retention {

namespace fs = std::filesystem;

namespace {

// fd-relative, so a folder swapped for a symlink mid-walk is never entered (O_NOFOLLOW on every open).
void walk(int fd, const std::string& path, LaneUsage& u, int depth) {
  if (depth > 256) {
    u.errors.push_back(path + ": nested deeper than 256 folders; not measured below");
    return;
  }
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    u.errors.push_back(path + ": " + std::strerror(errno));
    return;
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    if (!S_ISDIR(st.st_mode)) {
      u.bytes += static_cast<uint64_t>(st.st_size);
      ++u.files;
      continue;
    }
    int child = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) {
      if (errno != ENOENT) u.errors.push_back(path + "/" + e->d_name + ": " + std::strerror(errno));
      continue;
    }
    walk(child, path + "/" + e->d_name, u, depth + 1);
  }
  ::closedir(d);
}

bool inside(const fs::path& child, const fs::path& parent) {
  auto c = child.lexically_normal(), p = parent.lexically_normal();
  auto [pe, ce] = std::mismatch(p.begin(), p.end(), c.begin(), c.end());
  return pe == p.end() || (std::next(pe) == p.end() && pe->empty());
}

}  // namespace

void measure_tree(const fs::path& dir, LaneUsage& into) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) into.errors.push_back(dir.string() + ": " + std::strerror(errno));
    return;  // a lane whose folder does not exist holds nothing
  }
  walk(fd, dir.string(), into, 0);
}

std::vector<LaneUsage> measure_capped_lanes(const fs::path& root) {
  nlohmann::json policy = load_policy(root);
  std::vector<LaneUsage> out;
  for (const auto& [name, cfg] : policy["lanes"].items()) {
    if (!cfg.value("enabled", true) || !cfg.contains("max_bytes")) continue;
    fs::path lane_dir = lane_root(root, name, cfg);
    if (!inside(lane_dir, root)) continue;
    LaneUsage u;
    u.lane = name;
    u.lane_root = lane_dir;
    u.cap_bytes = cfg["max_bytes"].get<uint64_t>();
    measure_tree(lane_dir, u);
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace cp::retention
