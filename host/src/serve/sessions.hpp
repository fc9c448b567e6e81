// Browser sessions: a bearer token exchanged (POST /api/session) for an HttpOnly, SameSite=Strict session
// cookie plus a CSRF token. A browser cannot attach a bearer token to an EventSource or keep one out of
// script reach; a cookie it can, and HttpOnly keeps it from page scripts. The store lives in memory only:
// a restarted serve forgets every session and browsers exchange a token again.
#pragma once

#include "serve/auth.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace cp::serve {

inline constexpr const char* kSessionCookie = "cp_session";
inline constexpr const char* kCsrfCookie = "cp_csrf";  // readable by the page: the double submit
inline constexpr const char* kCsrfHeader = "x-csrf-token";

struct Session {
  Principal who;
  std::string csrf;
  std::chrono::system_clock::time_point expires;
};

struct OpenedSession {
  std::string id;    // the cookie's value (256 random bits); the store keeps only its SHA-256
  std::string csrf;  // 256 random bits
  std::chrono::system_clock::time_point expires;
};

class SessionStore {
 public:
  // At most `max_sessions` in all and `per_token` for one token: a token's oldest session is ended to make
  // room for its newest, so one holder (a viewer, a script) can churn only its own sessions and never
  // crowd out another token's.
  explicit SessionStore(size_t max_sessions = 10000, size_t per_token = 32)
      : max_(max_sessions), per_token_(per_token) {}

  // A new session for `who`, or nullopt when the store is full even after dropping expired sessions.
  std::optional<OpenedSession> open(const Principal& who, std::chrono::seconds ttl);

  enum class Lookup { found, unknown, expired };
  // The session named by a cookie value; an expired one is dropped and reported as such.
  std::optional<Session> find(std::string_view id, Lookup& why);

  // Ends a session; false when there was none.
  bool close(std::string_view id);

  size_t size() const;

 private:
  void drop_expired_locked(std::chrono::system_clock::time_point now);
  size_t max_, per_token_;
  mutable std::mutex mu_;
  std::map<std::string, Session> by_hash_;
};

// Equal strings, compared in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

// The values of every cookie named `name` in a Cookie header ("a=1; b=2"); more than one value means the
// request is ambiguous (a cookie planted for a parent path or domain), which callers refuse.
std::vector<std::string> cookie_values(std::string_view header, std::string_view name);

}  // namespace cp::serve
