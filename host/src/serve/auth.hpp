// Who is calling the API. Bearer tokens come from a token file (schemas/api_tokens.schema.json) that holds
// only each token's SHA-256; a presented token is hashed and compared with every entry in constant time,
// so neither the file nor the timing gives a token away.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cp::serve {

enum class Role { none = 0, viewer = 1, operator_ = 2, admin = 3 };
const char* role_name(Role r);
std::optional<Role> role_from_name(std::string_view name);

struct Principal {
  std::string token_id;  // "" for an anonymous caller
  Role role = Role::none;
};

class TokenStore {
 public:
  // An empty store: every bearer token is refused.
  TokenStore() = default;
  // Reads and validates the file; throws std::runtime_error naming the file and the JSON pointer.
  static TokenStore load(const std::filesystem::path& file);

  // The holder of `token`, or nullopt. Thread-safe (read-only).
  std::optional<Principal> authenticate(std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string id;
    Role role;
    unsigned char hash[32];
  };
  std::vector<Entry> entries_;
};

// A new random token ("cpt_" + 64 hex digits, 256 bits from getrandom).
std::string generate_token();
std::string token_sha256(std::string_view token);

}  // namespace cp::serve
