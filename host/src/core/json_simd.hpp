// JSON text read through simdjson into nlohmann::json: the same document nlohmann's own parser builds, in
// about half the time (its lexer reads a character at a time). simdjson stays inside json_simd.cpp.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <string>

namespace cp::core {

// Spare capacity beyond a text's size that spares parse_json_simd a copy of it.
inline constexpr std::size_t kJsonSimdPadding = 64;
// Nesting past this is declined: a text parse_json_simd reads is nested at most this deep.
inline constexpr std::size_t kJsonSimdMaxDepth = 128;

// Reads `text` into `out` as nlohmann::json::parse(text) would. False, with `out` untouched, when simdjson
// refuses the text, when it nests deeper than kJsonSimdMaxDepth, or when it holds something the two could
// read apart (a "-0", which nlohmann keeps as a signed integer); the caller then parses with nlohmann, whose
// answer and error message are the ones of record. Thread-safe: each thread has its own simdjson parser.
bool parse_json_simd(const std::string& text, nlohmann::json& out);

}  // namespace cp::core
