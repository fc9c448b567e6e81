// The browser runner's URL policy as the host judges it before a run: origin patterns
// (browser_tasks.schema.json#/definitions/origin_pattern), whether a contract's policy only narrows the
// operator's (policies/browser_policy.json), and the loopback-only rule of a run without network. What
// `cp-host validate` and `cp-host run` refuse, and what `cp-host intake preview` shows as effective.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cp::contract {

// scheme://[*.]host[:port]. port -1 = any ("*"); without a port, the scheme's default one.
struct OriginPattern {
  std::string scheme;          // http, https, ws, wss (lower case)
  bool any_subdomain = false;  // "*.example.com": strict subdomains of host, not host itself
  std::string host;            // lower case; an IPv6 address keeps its brackets
  int port = -1;
  std::string text() const;
};

// Nothing when the text is not an origin pattern.
std::optional<OriginPattern> parse_origin_pattern(std::string_view text);

// True when every origin `inner` matches is also matched by `outer`: same scheme; the same host, or an
// outer "*.x" covering it; an outer port of * or the same port.
bool pattern_within(const OriginPattern& inner, const OriginPattern& outer);

// 127.0.0.0/8, [::1] or localhost (no wildcard: "*.localhost" is not taken on trust).
bool loopback_pattern(const OriginPattern& p);

// The origin part (scheme://authority) of a URL or URL glob, as an origin pattern; nothing when it has a
// wildcard or is not http(s)/ws(s).
std::optional<OriginPattern> literal_origin_of(std::string_view url);

// Whether a run may reach the network: the contract's tool_permissions.network (else its pack's default,
// else deny), within the pack's ceiling (sandbox.network, else its default tool_permissions.network, else
// deny), as the compiler and the run sandbox decide it. `pack` is the pack document.
bool network_allowed(const nlohmann::json& contract, const nlohmann::json& pack);
// The same from a compiled contract.
bool compiled_network_allowed(const nlohmann::json& compiled);

struct BrowserPolicyIssue {
  std::string pointer;  // from the contract's root: /runtime_options/browser_tasks/...
  std::string message;
  std::string expected;  // how to fix it
};

// What a contract's runtime_options.browser_tasks asks beyond what it may: origins, URL patterns,
// downloads, file URLs and budgets outside the operator policy (`operator_policy`:
// policies/browser_policy.json, null when the file does not exist), non-loopback origins when the run has no
// network, a non-loopback attach endpoint. Assumes `tasks` passed browser_tasks.schema.json (anything else is
// skipped).
std::vector<BrowserPolicyIssue> check_browser_tasks(const nlohmann::json& tasks,
                                                    const nlohmann::json* operator_policy, bool network);

// What a browser run of a valid contract is allowed, for intake preview: {allowed_origins (the contract's,
// else the operator's; loopback ones only without network), allowed_url_patterns, allow_downloads,
// allow_file_urls, max_pages, max_requests, source}.
nlohmann::json effective_browser_policy(const nlohmann::json& tasks, const nlohmann::json* operator_policy,
                                        bool network);

}  // namespace cp::contract
