// Finds where a JSON pointer's value starts in the source text, so CI annotations can name a line.
// nlohmann::json keeps no positions; this is a small scanner over already-parsed (hence valid) text.
#pragma once

#include <string>
#include <string_view>

namespace cp::core {

// 1-based line of the value `pointer` designates in `text`. When the pointer does not exist (a missing
// property), the line of its deepest existing ancestor. 1 when nothing better is known.
int line_of_pointer(std::string_view text, std::string_view pointer);

// A key as one JSON pointer token (RFC 6901): "~" becomes "~0", "/" becomes "~1".
std::string pointer_token(std::string_view key);

}  // namespace cp::core
