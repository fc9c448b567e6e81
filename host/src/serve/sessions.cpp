#include "serve/sessions.hpp"

#include <algorithm>

namespace cp::serve {

using clock = std::chrono::system_clock;

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::vector<std::string> cookie_values(std::string_view header, std::string_view name) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view part = header.substr(pos, end - pos);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) {
      std::string_view v = part.substr(eq + 1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      out.emplace_back(v);
    }
    pos = end + 1;
  }
  return out;
}

void SessionStore::drop_expired_locked(clock::time_point now) {
  for (auto it = by_hash_.begin(); it != by_hash_.end();)
    it = it->second.expires <= now ? by_hash_.erase(it) : std::next(it);
}

std::optional<OpenedSession> SessionStore::open(const Principal& who, std::chrono::seconds ttl) {
  OpenedSession s{generate_token(), generate_token(), clock::now() + ttl};
  std::lock_guard<std::mutex> g(mu_);
  // The token's own oldest sessions go first when it holds its share already.
  for (;;) {
    auto oldest = by_hash_.end();
    size_t held = 0;
    for (auto it = by_hash_.begin(); it != by_hash_.end(); ++it) {
      if (it->second.who.token_id != who.token_id) continue;
      ++held;
      if (oldest == by_hash_.end() || it->second.expires < oldest->second.expires) oldest = it;
    }
    if (held < per_token_ || oldest == by_hash_.end()) break;
    by_hash_.erase(oldest);
  }
  if (by_hash_.size() >= max_) drop_expired_locked(clock::now());
  if (by_hash_.size() >= max_) return std::nullopt;
  by_hash_[token_sha256(s.id)] = Session{who, s.csrf, s.expires};
  return s;
}

std::optional<Session> SessionStore::find(std::string_view id, Lookup& why) {
  std::string key = token_sha256(id);
  std::lock_guard<std::mutex> g(mu_);
  auto it = by_hash_.find(key);
  if (it == by_hash_.end()) {
    why = Lookup::unknown;
    return std::nullopt;
  }
  if (it->second.expires <= clock::now()) {
    by_hash_.erase(it);
    why = Lookup::expired;
    return std::nullopt;
  }
  why = Lookup::found;
  return it->second;
}

bool SessionStore::close(std::string_view id) {
  std::lock_guard<std::mutex> g(mu_);
  return by_hash_.erase(token_sha256(id)) > 0;
}

size_t SessionStore::size() const {
  std::lock_guard<std::mutex> g(mu_);
  return by_hash_.size();
}

}  // namespace cp::serve
