// Safe reads of one field of a JSON answer, for the text printers. What they print comes from a bundle a
// run wrote or from a server's answer: neither is trusted to have the shape it should, so a field that is
// missing or of another kind reads as the fallback (never an exception, never nlohmann's undefined
// behaviour of a const operator[] on a missing key), and text never carries a control character to the
// terminal.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace cp::cli {

// The string at `key`, terminal-safe (read_views.hpp), or `fallback`.
std::string text_of(const nlohmann::json& j, const char* key, const std::string& fallback = "");
// The object or array at `key`, or an empty one.
const nlohmann::json& object_of(const nlohmann::json& j, const char* key);
const nlohmann::json& array_of(const nlohmann::json& j, const char* key);
// The non-negative integer at `key`, or 0.
unsigned long long count_of(const nlohmann::json& j, const char* key);
// The number at `key` as printed ("12", "0.5"), or `fallback`.
std::string number_of(const nlohmann::json& j, const char* key, const std::string& fallback = "-");
// The boolean at `key`, or `fallback`.
bool flag_of(const nlohmann::json& j, const char* key, bool fallback);

}  // namespace cp::cli
