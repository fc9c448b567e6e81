#include "serve/auth.hpp"
#include "core/json_file.hpp"

#include "core/schema_catalog.hpp"
#include "core/sha256.hpp"
#include "store/bundle.hpp"

#include <openssl/crypto.h>
#include <sys/random.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <stdexcept>

namespace cp::serve {

using nlohmann::json;

const char* role_name(Role r) {
  switch (r) {
    case Role::viewer:
      return "viewer";
    case Role::operator_:
      return "operator";
    case Role::admin:
      return "admin";
    default:
      return "none";
  }
}

std::optional<Role> role_from_name(std::string_view n) {
  if (n == "viewer") return Role::viewer;
  if (n == "operator") return Role::operator_;
  if (n == "admin") return Role::admin;
  return std::nullopt;
}

std::string token_sha256(std::string_view token) {
  return core::sha256_hex(token);
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Every request authenticates: a plain loop, not 32 sscanf calls.
bool unhex(const std::string& hex, unsigned char out[32]) {
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

}  // namespace

TokenStore TokenStore::load(const std::filesystem::path& file) {
  json doc = core::read_json_file(file);
  if (!doc.is_object())
    throw std::runtime_error(file.string() + ": missing, unreadable or not a JSON object");
  auto v = core::schema("api_tokens").validate(doc);
  if (!v.empty())
    throw std::runtime_error(file.string() + ": " + (v[0].pointer.empty() ? "/" : v[0].pointer) + ": " +
                             v[0].message +
                             " (see schemas/api_tokens.schema.json; add tokens with `cp-host tokens add`)");
  TokenStore s;
  for (const auto& t : doc["tokens"]) {
    Entry e;
    e.id = t["id"].get<std::string>();
    e.role = *role_from_name(t["role"].get<std::string>());
    unhex(t["sha256"].get<std::string>(), e.hash);
    s.entries_.push_back(e);
  }
  return s;
}

std::optional<Principal> TokenStore::authenticate(std::string_view token) const {
  unsigned char h[32];
  if (!unhex(token_sha256(token), h)) return std::nullopt;
  std::optional<Principal> found;
  // Every entry is compared, found or not, so the time taken says nothing about which one matched.
  for (const auto& e : entries_)
    if (CRYPTO_memcmp(h, e.hash, sizeof h) == 0 && !found) found = Principal{e.id, e.role};
  return found;
}

std::string generate_token() {
  unsigned char raw[32];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string t = "cpt_";
  for (unsigned char c : raw) {
    t += hex[c >> 4];
    t += hex[c & 15];
  }
  return t;
}

}  // namespace cp::serve
