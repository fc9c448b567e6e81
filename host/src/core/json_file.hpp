// Bounded JSON file reading: the one way cp-host reads a JSON document from disk.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace cp::core {

// Reads a JSON file; null json when missing, unreadable, larger than kMaxJsonFileBytes, nested deeper than
// kMaxJsonDepth, or not JSON. Bundle files, tokens and cases are far smaller; a bigger one is refused
// unread, so no file can make cp-host read gigabytes into memory.
inline constexpr std::uintmax_t kMaxJsonFileBytes = 64u << 20;
nlohmann::json read_json_file(const std::filesystem::path& file);
// The same, and the text it was parsed from in `text` (empty when refused unread or unreadable).
nlohmann::json read_json_file(const std::filesystem::path& file, std::string& text);

}  // namespace cp::core
