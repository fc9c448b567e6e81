// SHA-256 (OpenSSL), hex-encoded.
#pragma once

#include <string>
#include <string_view>

namespace cp::core {

std::string sha256_hex(std::string_view data);

// The sha256 of what is left to read from `fd`, read in 1 MiB blocks (files of any size in bounded
// memory); `bytes` gets how many were read. Throws std::system_error on a read error.
std::string sha256_fd_hex(int fd, unsigned long long& bytes);

}  // namespace cp::core
