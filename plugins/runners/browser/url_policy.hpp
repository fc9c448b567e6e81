// The browser's URL policy: which URLs a run's pages may load. Fail closed: a URL that does not parse, a
// scheme the policy does not name, or an origin no pattern matches is refused.
//
// URLs reach here as Chromium canonicalised them (lower-case scheme and host, default ports dropped,
// IPv6 in brackets), so the parser below only has to split that form, not repair it.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cp::browser {

struct Origin {
  std::string scheme;  // http, https, ws, wss
  std::string host;    // lower-case; IPv6 without brackets
  int port = 0;        // the scheme's default when the URL names none
};

// The origin of an http(s)/ws(s) URL; nullopt for any other URL or one that does not parse.
std::optional<Origin> origin_of(const std::string& url);

// True for 127.0.0.0/8, ::1 and localhost.
bool is_loopback_host(const std::string& host);

// One allowed_origins entry: scheme://host[:port], with "*." before a host for its subdomains and ":*"
// for any port. A ws(s) URL is judged by its http(s) twin, so allowing http://x allows ws://x.
struct OriginPattern {
  std::string scheme;
  std::string host;  // without the "*." prefix
  bool subdomains = false;
  int port = 0;  // -1 = any
  static std::optional<OriginPattern> parse(const std::string& text);
  bool matches(const Origin& o) const;
  // True when every origin this pattern matches is also matched by `wider` (for policy narrowing).
  bool within(const OriginPattern& wider) const;
};

class UrlPolicy {
 public:
  // `policy`: a browser_policy object (allowed_origins, allowed_url_patterns, allow_downloads,
  // allow_file_urls). Throws std::invalid_argument naming the bad entry.
  explicit UrlPolicy(const nlohmann::json& policy);

  // Empty when the URL may load; otherwise why not.
  std::string refusal(const std::string& url) const;
  bool downloads_allowed() const { return allow_downloads_; }
  const std::vector<OriginPattern>& origins() const { return origins_; }
  std::vector<std::string> describe() const;

 private:
  std::vector<OriginPattern> origins_;
  std::vector<std::string> url_globs_;
  bool allow_downloads_ = false;
  bool allow_file_urls_ = false;
};

// Glob over a whole string, '*' = any run of characters; linear in practice (greedy with one backtrack
// point), so a hostile pattern or URL costs no more than their lengths multiplied.
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace cp::browser
