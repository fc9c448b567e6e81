// What of a repository's .git folder a run must never change through cp-host: the index, the config, the
// exclude file, the refs and the object store. Two states compare equal when none of it changed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace cp::test {

struct GitDirState {
  std::string index;
  std::filesystem::file_time_type index_mtime{};
  std::string config;
  std::string exclude;
  std::string packed_refs;
  uint64_t object_files = 0;
  uint64_t object_bytes = 0;
  std::filesystem::file_time_type newest_object{};  // the latest mtime in objects/ (a freshened pack shows)

  bool operator==(const GitDirState&) const = default;

  std::string describe() const {
    return "index " + std::to_string(index.size()) + " B, config " + std::to_string(config.size()) +
           " B, objects " + std::to_string(object_files) + " files / " + std::to_string(object_bytes) + " B";
  }
};

inline std::string whole_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline GitDirState git_dir_state(const std::filesystem::path& git_dir) {
  namespace fs = std::filesystem;
  GitDirState s;
  std::error_code ec;
  s.index = whole_file(git_dir / "index");
  s.index_mtime = fs::last_write_time(git_dir / "index", ec);
  s.config = whole_file(git_dir / "config");
  s.exclude = whole_file(git_dir / "info" / "exclude");
  s.packed_refs = whole_file(git_dir / "packed-refs");
  for (auto it = fs::recursive_directory_iterator(git_dir / "objects", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    ++s.object_files;
    s.object_bytes += it->file_size(ec);
    s.newest_object = std::max(s.newest_object, it->last_write_time(ec));
  }
  return s;
}

}  // namespace cp::test
