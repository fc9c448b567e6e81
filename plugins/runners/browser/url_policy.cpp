#include "url_policy.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace cp::browser {

using nlohmann::json;

namespace {

int default_port(const std::string& scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

// ws -> http, wss -> https: a WebSocket handshake is judged as its HTTP twin.
std::string web_scheme(const std::string& scheme) {
  if (scheme == "ws") return "http";
  if (scheme == "wss") return "https";
  return scheme;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<int> parse_port(const std::string& s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > 65535) return std::nullopt;
  return v;
}

// Splits "host[:port]" / "[v6][:port]" into host and port text.
bool split_host_port(const std::string& hp, std::string& host, std::string& port) {
  if (!hp.empty() && hp.front() == '[') {
    size_t close = hp.find(']');
    if (close == std::string::npos) return false;
    host = hp.substr(1, close - 1);
    std::string rest = hp.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    port = rest.substr(1);
    return true;
  }
  size_t colon = hp.find(':');
  host = hp.substr(0, colon);
  if (colon != std::string::npos) {
    port = hp.substr(colon + 1);
    if (port.empty()) return false;
  }
  return !host.empty();
}

}  // namespace

std::optional<Origin> origin_of(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  Origin o;
  o.scheme = lower(url.substr(0, sep));
  if (default_port(o.scheme) == 0) return std::nullopt;
  size_t start = sep + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  // user:password@ comes before the host; the host is what follows the last '@'.
  size_t at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  if (authority.find_first_of(" \\\t\r\n") != std::string::npos) return std::nullopt;
  std::string port;
  if (!split_host_port(authority, o.host, port)) return std::nullopt;
  o.host = lower(o.host);
  if (o.host.empty()) return std::nullopt;
  if (port.empty()) {
    o.port = default_port(o.scheme);
  } else {
    auto p = parse_port(port);
    if (!p) return std::nullopt;
    o.port = *p;
  }
  return o;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8 in dotted-quad form, as Chromium canonicalises any IPv4 spelling.
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.')
      ++dots;
    else if (c < '0' || c > '9')
      return false;
  }
  return dots == 3;
}

std::optional<OriginPattern> OriginPattern::parse(const std::string& text) {
  size_t sep = text.find("://");
  if (sep == std::string::npos) return std::nullopt;
  OriginPattern p;
  p.scheme = web_scheme(lower(text.substr(0, sep)));
  if (p.scheme != "http" && p.scheme != "https") return std::nullopt;
  std::string hp = text.substr(sep + 3);
  if (hp.find_first_of("/?#@") != std::string::npos) return std::nullopt;
  if (hp.rfind("*.", 0) == 0) {
    p.subdomains = true;
    hp = hp.substr(2);
  }
  std::string port;
  if (!split_host_port(hp, p.host, port)) return std::nullopt;
  p.host = lower(p.host);
  if (p.host.find('*') != std::string::npos) return std::nullopt;
  if (port.empty()) {
    p.port = default_port(p.scheme);
  } else if (port == "*") {
    p.port = -1;
  } else {
    auto v = parse_port(port);
    if (!v) return std::nullopt;
    p.port = *v;
  }
  return p;
}

bool OriginPattern::matches(const Origin& o) const {
  if (web_scheme(o.scheme) != scheme) return false;
  if (port != -1 && o.port != port) return false;
  if (o.host == host) return true;
  return subdomains && o.host.size() > host.size() + 1 &&
         o.host.compare(o.host.size() - host.size() - 1, std::string::npos, "." + host) == 0;
}

bool OriginPattern::within(const OriginPattern& wider) const {
  if (scheme != wider.scheme) return false;
  if (wider.port != -1 && port != wider.port) return false;
  if (!wider.subdomains) return !subdomains && host == wider.host;
  return host == wider.host ||
         (host.size() > wider.host.size() + 1 &&
          host.compare(host.size() - wider.host.size() - 1, std::string::npos, "." + wider.host) == 0);
}

UrlPolicy::UrlPolicy(const json& policy) {
  if (!policy.is_object()) throw std::invalid_argument("browser_policy is not an object");
  const json origins = policy.value("allowed_origins", json::array());
  for (size_t i = 0; i < origins.size(); ++i) {
    auto p = origins[i].is_string() ? OriginPattern::parse(origins[i].get<std::string>()) : std::nullopt;
    if (!p)
      throw std::invalid_argument("allowed_origins/" + std::to_string(i) +
                                  " is not scheme://host[:port] (scheme http, https, ws or wss)");
    origins_.push_back(*p);
  }
  for (const auto& g : policy.value("allowed_url_patterns", json::array()))
    if (g.is_string()) url_globs_.push_back(g.get<std::string>());
  allow_downloads_ = policy.value("allow_downloads", false);
  allow_file_urls_ = policy.value("allow_file_urls", false);
}

std::string UrlPolicy::refusal(const std::string& url) const {
  // Local documents the browser makes itself carry no request to anywhere.
  if (url == "about:blank" || url.rfind("about:srcdoc", 0) == 0 || url.rfind("data:", 0) == 0 ||
      url.rfind("blob:", 0) == 0)
    return "";
  if (url.rfind("file:", 0) == 0)
    return allow_file_urls_ ? "" : "file:// URLs are denied by the browser policy";
  auto o = origin_of(url);
  if (!o) return "the URL's scheme or form is not one the browser policy can allow";
  for (const auto& p : origins_)
    if (p.matches(*o)) return "";
  for (const auto& g : url_globs_)
    if (glob_match(g, url)) return "";
  return "origin " + web_scheme(o->scheme) + "://" +
         (o->host.find(':') != std::string::npos ? "[" + o->host + "]" : o->host) + ":" +
         std::to_string(o->port) + " is not in the browser policy's allowed_origins";
}

std::vector<std::string> UrlPolicy::describe() const {
  std::vector<std::string> out;
  for (const auto& p : origins_)
    out.push_back(p.scheme + "://" + (p.subdomains ? "*." : "") + p.host + ":" +
                  (p.port == -1 ? std::string("*") : std::to_string(p.port)));
  for (const auto& g : url_globs_) out.push_back(g);
  return out;
}

bool glob_match(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace cp::browser
