// Crash-safe file writes: temp file in the same folder, fsync, rename over the target, fsync the folder.
// After a crash the target holds either the old or the new content, never a mix.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace cp::store {

// Throws std::system_error naming the path on any failure.
void write_atomic(const std::filesystem::path& target, std::string_view content);
void write_json_atomic(const std::filesystem::path& target, const nlohmann::json& doc);
// The exact text write_json_atomic() writes for `doc` (what verification compares a manifest against).
std::string json_file_text(const nlohmann::json& doc);
void fsync_dir(const std::filesystem::path& dir);

// Writes all of `data` to fd, retrying short writes and EINTR. Returns 0, or the errno that stopped it.
int write_all(int fd, std::string_view data);

// A regular file read whole, without following a symlink and without blocking on a FIFO (a run may have
// left either where a file was expected). not_regular: missing, a link, a FIFO or device, or unreadable;
// too_large: more than max_bytes (nothing is read).
struct FileRead {
  enum class Status { ok, not_regular, too_large };
  Status status = Status::not_regular;
  std::string bytes;
};
FileRead read_regular_file(const std::filesystem::path& p, uint64_t max_bytes);
// The same for `rel` under `base`, no component of the path followed if it is a link (a folder a run swaps
// for a link while the file is read leads nowhere); `rel` with "..", "." or an absolute path is refused.
FileRead read_regular_file_beneath(const std::filesystem::path& base, const std::filesystem::path& rel,
                                   uint64_t max_bytes);

}  // namespace cp::store
