#include "contract/browser_policy.hpp"
#include "core/ascii.hpp"
#include "core/json_locator.hpp"

#include <algorithm>
#include <cctype>

namespace cp::contract {

using nlohmann::json;

namespace {

int default_port(const std::string& scheme) {
  return scheme == "https" || scheme == "wss" ? 443 : 80;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool valid_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

const char* kTasks = "/runtime_options/browser_tasks";

std::string where_allowed(const json* op) {
  if (!op) return "policies/browser_policy.json does not exist, so nothing is";
  json origins = op->value("allowed_origins", json::array());
  return "policies/browser_policy.json allows " +
         (origins.empty() ? std::string("no origin") : origins.dump());
}

bool within_operator(const OriginPattern& p, const json* op) {
  if (!op) return false;
  for (const auto& o : op->value("allowed_origins", json::array())) {
    if (!o.is_string()) continue;
    auto outer = parse_origin_pattern(o.get<std::string>());
    if (outer && pattern_within(p, *outer)) return true;
  }
  return false;
}

}  // namespace

std::string OriginPattern::text() const {
  return scheme + "://" + (any_subdomain ? "*." : "") + host + ":" + (port < 0 ? "*" : std::to_string(port));
}

std::optional<OriginPattern> parse_origin_pattern(std::string_view text) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  OriginPattern p;
  p.scheme = core::ascii_lower(text.substr(0, sep));
  if (p.scheme != "http" && p.scheme != "https" && p.scheme != "ws" && p.scheme != "wss") return std::nullopt;
  std::string_view rest = text.substr(sep + 3);
  if (rest.rfind("*.", 0) == 0) {
    p.any_subdomain = true;
    rest.remove_prefix(2);
  }
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos || p.any_subdomain) return std::nullopt;
    host = rest.substr(0, close + 1);
    std::string_view inner = host.substr(1, host.size() - 2);
    if (inner.empty() || !std::all_of(inner.begin(), inner.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        }))
      return std::nullopt;
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else {
    auto colon = rest.find(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), valid_host_char) || host.front() == '.' ||
        host.back() == '.')
      return std::nullopt;
  }
  p.host = core::ascii_lower(host);
  if (port.empty()) {
    p.port = default_port(p.scheme);
  } else if (port == "*") {
    p.port = -1;
  } else {
    if (!all_digits(port) || port.size() > 5) return std::nullopt;
    int n = std::stoi(std::string(port));
    if (n < 1 || n > 65535) return std::nullopt;
    p.port = n;
  }
  return p;
}

bool pattern_within(const OriginPattern& inner, const OriginPattern& outer) {
  if (inner.scheme != outer.scheme) return false;
  if (outer.port >= 0 && inner.port != outer.port) return false;
  if (!outer.any_subdomain) return !inner.any_subdomain && inner.host == outer.host;
  // outer "*.x": inner "a.x", "*.a.x" or "*.x" — never "x" itself.
  const std::string suffix = "." + outer.host;
  if (inner.any_subdomain && inner.host == outer.host) return true;
  return inner.host.size() > suffix.size() &&
         inner.host.compare(inner.host.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool loopback_pattern(const OriginPattern& p) {
  if (p.any_subdomain) return false;
  if (p.host == "localhost" || p.host == "[::1]") return true;
  // 127.a.b.c, each part a decimal byte.
  if (p.host.rfind("127.", 0) != 0) return false;
  int parts = 0;
  size_t start = 0;
  while (start <= p.host.size()) {
    size_t dot = p.host.find('.', start);
    std::string part = p.host.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!all_digits(part) || part.size() > 3 || std::stoi(part) > 255) return false;
    ++parts;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

std::optional<OriginPattern> literal_origin_of(std::string_view url) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  auto end = url.find_first_of("/?#", sep + 3);
  std::string_view origin = url.substr(0, end);
  if (origin.find('*') != std::string_view::npos) return std::nullopt;
  // user:password@ would hide the host from a reader; it is not a literal origin here.
  if (origin.find('@') != std::string_view::npos) return std::nullopt;
  return parse_origin_pattern(origin);
}

bool network_allowed(const json& contract, const json& pack) {
  // Read leniently: the contract may break its schema elsewhere, and validation reports that on its own.
  auto text = [](const json& obj, const char* key) {
    return obj.is_object() && obj.contains(key) && obj[key].is_string() ? obj[key].get<std::string>()
                                                                        : std::string();
  };
  const json none = json::object();
  const json& defaults = pack.is_object() && pack.contains("defaults") ? pack["defaults"] : none;
  const json& pack_perms =
      defaults.is_object() && defaults.contains("tool_permissions") ? defaults["tool_permissions"] : none;
  const json& perms = contract.is_object() && contract.contains("tool_permissions")
                          ? contract["tool_permissions"]
                          : pack_perms;
  if (text(perms, "network") != "allow") return false;
  std::string ceiling =
      text(pack.is_object() && pack.contains("sandbox") ? pack["sandbox"] : none, "network");
  if (ceiling.empty()) ceiling = text(pack_perms, "network");
  return ceiling == "allow";
}

bool compiled_network_allowed(const json& compiled) {
  const json& c = compiled["contract"];
  json perms = c.value("tool_permissions", json::object());
  return compiled["pack"].value("network_ceiling", "deny") == "allow" &&
         perms.value("network", "deny") == "allow";
}

std::vector<BrowserPolicyIssue> check_browser_tasks(const json& tasks, const json* op, bool network) {
  std::vector<BrowserPolicyIssue> out;
  if (!tasks.is_object()) return out;
  const std::string base = std::string(kTasks) + "/browser_policy";
  const json own = tasks.value("browser_policy", json::object());
  const char* no_network =
      "the run has no network (tool_permissions.network is deny, or its pack's ceiling is), so only "
      "loopback origins (127.0.0.0/8, [::1], localhost) can be reached";

  const json origins = own.value("allowed_origins", json::array());
  for (size_t i = 0; i < origins.size(); ++i) {
    if (!origins[i].is_string()) continue;
    const std::string text = origins[i].get<std::string>();
    const std::string ptr = base + "/allowed_origins/" + std::to_string(i);
    auto p = parse_origin_pattern(text);
    if (!p) {
      out.push_back({ptr, "'" + text + "' is not an origin pattern",
                     "scheme://host[:port] with scheme http, https, ws or wss, a host optionally starting "
                     "with *., and a port of 1-65535 or *"});
      continue;
    }
    if (!within_operator(*p, op))
      out.push_back(
          {ptr, "origin '" + text + "' is not within the operator's browser policy: " + where_allowed(op),
           "a contract may only narrow policies/browser_policy.json: remove this origin or narrow it "
           "to one the operator allows, or ask the operator to add it to allowed_origins there"});
    if (!network && !loopback_pattern(*p))
      out.push_back({ptr, "origin '" + text + "' is not a loopback origin and " + no_network,
                     "remove the origin, point the tasks at a loopback server (e.g. http://127.0.0.1:8000), "
                     "or set tool_permissions.network to allow under a pack whose ceiling allows network"});
  }

  const json patterns = own.value("allowed_url_patterns", json::array());
  const json op_patterns = op ? op->value("allowed_url_patterns", json::array()) : json::array();
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (!patterns[i].is_string()) continue;
    const std::string text = patterns[i].get<std::string>();
    const std::string ptr = base + "/allowed_url_patterns/" + std::to_string(i);
    auto origin = literal_origin_of(text);
    bool listed = std::find(op_patterns.begin(), op_patterns.end(), json(text)) != op_patterns.end();
    if (!listed && !(origin && within_operator(*origin, op)))
      out.push_back({ptr,
                     "URL pattern '" + text +
                         "' is not within the operator's browser policy: its origin is not a literal one "
                         "the operator allows (" +
                         where_allowed(op) + ") and it is not one of the operator's allowed_url_patterns",
                     "a pattern starting with a literal scheme://host[:port] the operator allows, or exactly "
                     "one of the operator's allowed_url_patterns"});
    if (!network && text.rfind("file:", 0) != 0 && !(origin && loopback_pattern(*origin)))
      out.push_back({ptr, "URL pattern '" + text + "' does not name a loopback origin and " + no_network,
                     "remove the pattern, or set tool_permissions.network to allow under a pack whose "
                     "ceiling allows network"});
  }

  for (const char* flag : {"allow_downloads", "allow_file_urls"}) {
    if (own.value(flag, false) == true && !(op && op->value(flag, false) == true))
      out.push_back({base + "/" + flag,
                     std::string(flag) + " is true but policies/browser_policy.json " +
                         (op ? "does not allow it" : "does not exist"),
                     "set " + std::string(flag) +
                         " to false (or drop it), or ask the operator to allow it in "
                         "policies/browser_policy.json"});
  }

  const json budgets = tasks.value("budgets", json::object());
  for (const auto& [key, fallback] :
       {std::pair<const char*, int64_t>{"max_pages", 50}, {"max_requests", 5000}}) {
    if (!budgets.contains(key) || !budgets[key].is_number_integer()) continue;
    int64_t limit = op ? op->value(key, fallback) : fallback;
    if (budgets[key].get<int64_t>() > limit)
      out.push_back({std::string(kTasks) + "/budgets/" + core::pointer_token(key),
                     std::string(key) + " " + budgets[key].dump() + " is over the operator's " +
                         std::to_string(limit) + " (policies/browser_policy.json" +
                         (op ? "" : " absent: default") + ")",
                     "at most " + std::to_string(limit)});
  }

  const json profile = tasks.value("profile", json::object());
  if (profile.contains("endpoint") && profile["endpoint"].is_string()) {
    std::string ep = profile["endpoint"].get<std::string>();
    std::string as_http = ep.rfind("ws://", 0) == 0 ? "http://" + ep.substr(5) : ep;
    auto origin = literal_origin_of(as_http);
    if (!origin || !loopback_pattern(*origin))
      out.push_back({std::string(kTasks) + "/profile/endpoint",
                     "attach endpoint '" + ep + "' is not on a loopback address",
                     "a DevTools endpoint on 127.0.0.1, [::1] or localhost, e.g. http://127.0.0.1:9222"});
  }
  return out;
}

json effective_browser_policy(const json& tasks, const json* op, bool network) {
  const json own = tasks.is_object() ? tasks.value("browser_policy", json::object()) : json::object();
  json origins = own.contains("allowed_origins") ? own["allowed_origins"]
                 : op                            ? op->value("allowed_origins", json::array())
                                                 : json::array();
  json patterns = own.contains("allowed_url_patterns") ? own["allowed_url_patterns"]
                  : op                                 ? op->value("allowed_url_patterns", json::array())
                                                       : json::array();
  json dropped = json::array();
  if (!network) {
    json kept = json::array();
    for (const auto& o : origins) {
      auto p = o.is_string() ? parse_origin_pattern(o.get<std::string>()) : std::nullopt;
      (p && loopback_pattern(*p) ? kept : dropped).push_back(o);
    }
    origins = kept;
    json kept_patterns = json::array();
    for (const auto& u : patterns) {
      auto p = u.is_string() ? literal_origin_of(u.get<std::string>()) : std::nullopt;
      bool file = u.is_string() && u.get<std::string>().rfind("file:", 0) == 0;
      (file || (p && loopback_pattern(*p)) ? kept_patterns : dropped).push_back(u);
    }
    patterns = kept_patterns;
  }
  const json budgets = tasks.is_object() ? tasks.value("budgets", json::object()) : json::object();
  int64_t op_pages = op ? op->value("max_pages", int64_t{50}) : 50;
  int64_t op_requests = op ? op->value("max_requests", int64_t{5000}) : 5000;
  json out{
      {"allowed_origins", origins},
      {"allowed_url_patterns", patterns},
      {"allow_downloads", own.value("allow_downloads", false) && op && op->value("allow_downloads", false)},
      {"allow_file_urls", own.value("allow_file_urls", false) && op && op->value("allow_file_urls", false)},
      {"max_pages", std::min(budgets.value("max_pages", op_pages), op_pages)},
      {"max_requests", std::min(budgets.value("max_requests", op_requests), op_requests)},
      {"network", network ? "allow" : "deny"},
      {"source", own.contains("allowed_origins") ? "contract (within policies/browser_policy.json)"
                 : op                            ? "policies/browser_policy.json"
                                                 : "none: policies/browser_policy.json does not exist"}};
  if (!dropped.empty()) out["dropped_without_network"] = dropped;
  return out;
}

}  // namespace cp::contract
