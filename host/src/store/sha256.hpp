// SHA-256 (OpenSSL), hex-encoded.
#pragma once

#include <string>
#include <string_view>

namespace cp::store {

std::string sha256_hex(std::string_view data);

}  // namespace cp::store
