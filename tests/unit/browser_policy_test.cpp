// The browser URL policy the host judges before a run (contract/browser_policy): origin patterns, narrowing,
// the loopback-only rule without network, and the effective policy intake preview shows.
#include "contract/browser_policy.hpp"
#include "core/schema_catalog.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using cp::contract::check_browser_tasks;
using cp::contract::effective_browser_policy;
using cp::contract::parse_origin_pattern;
using nlohmann::json;

namespace {

bool within(const char* inner, const char* outer) {
  auto i = parse_origin_pattern(inner);
  auto o = parse_origin_pattern(outer);
  EXPECT_TRUE(i && o) << inner << " / " << outer;
  return i && o && cp::contract::pattern_within(*i, *o);
}

bool loopback(const char* p) {
  auto o = parse_origin_pattern(p);
  EXPECT_TRUE(o) << p;
  return o && cp::contract::loopback_pattern(*o);
}

const json kOperator = json::parse(R"({"policy":"browser_policy","allowed_origins":
  ["http://127.0.0.1:*","http://localhost:*","https://*.example.com","https://example.org"],
  "allowed_url_patterns":["https://cdn.example.net/lib/*"],"max_pages":20,"max_requests":300})");

std::map<std::string, std::string> issues(const json& tasks, const json* op, bool network) {
  std::map<std::string, std::string> out;
  for (const auto& i : check_browser_tasks(tasks, op, network)) out[i.pointer] += i.message + "|";
  return out;
}

}  // namespace

TEST(BrowserPolicy, OriginPatternsParseWithDefaultPortsAndRefuseTheRest) {
  auto p = parse_origin_pattern("HTTPS://Docs.Example.com");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->scheme, "https");
  EXPECT_EQ(p->host, "docs.example.com");
  EXPECT_EQ(p->port, 443);
  EXPECT_EQ(parse_origin_pattern("ws://127.0.0.1")->port, 80);
  EXPECT_EQ(parse_origin_pattern("http://localhost:*")->port, -1);
  auto v6 = parse_origin_pattern("http://[::1]:8080");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->port, 8080);
  for (const char* bad :
       {"ftp://x.com", "http://", "http://x.com:", "http://x.com:0", "http://x.com:70000", "http://x.com:8a",
        "http://*.[::1]", "http://a:b:c", "http://x.com/path", "x.com", "http://.x.com"})
    EXPECT_FALSE(parse_origin_pattern(bad)) << bad;
}

TEST(BrowserPolicy, PatternWithinPattern) {
  EXPECT_TRUE(within("http://127.0.0.1:8000", "http://127.0.0.1:*"));
  EXPECT_TRUE(within("http://127.0.0.1:*", "http://127.0.0.1:*"));
  EXPECT_FALSE(within("http://127.0.0.1:*", "http://127.0.0.1:8000"));
  EXPECT_TRUE(within("http://127.0.0.1", "http://127.0.0.1:80"));        // the default port is meant
  EXPECT_FALSE(within("https://127.0.0.1:8000", "http://127.0.0.1:*"));  // another scheme
  EXPECT_FALSE(within("http://127.0.0.2:80", "http://127.0.0.1:*"));
  EXPECT_TRUE(within("https://a.example.com", "https://*.example.com"));
  EXPECT_TRUE(within("https://*.a.example.com", "https://*.example.com"));
  EXPECT_TRUE(within("https://*.example.com", "https://*.example.com"));
  EXPECT_FALSE(within("https://example.com", "https://*.example.com"));  // subdomains only
  EXPECT_FALSE(within("https://*.example.com", "https://example.com"));
  EXPECT_FALSE(within("https://badexample.com", "https://*.example.com"));
  EXPECT_FALSE(within("https://a.example.com:8443", "https://*.example.com"));  // 443 only
}

TEST(BrowserPolicy, LoopbackIsLocalhostThe127NetworkAndIpv6One) {
  EXPECT_TRUE(loopback("http://127.0.0.1:8000"));
  EXPECT_TRUE(loopback("http://127.12.0.254:*"));
  EXPECT_TRUE(loopback("http://localhost"));
  EXPECT_TRUE(loopback("ws://[::1]:9222"));
  EXPECT_FALSE(loopback("http://128.0.0.1"));
  EXPECT_FALSE(loopback("http://127.0.0.1.evil.com"));
  EXPECT_FALSE(loopback("http://127.0.0.256"));
  EXPECT_FALSE(loopback("http://*.localhost"));
  EXPECT_FALSE(loopback("http://localhost.evil.com"));
  EXPECT_FALSE(loopback("http://[::2]"));
}

TEST(BrowserPolicy, AContractMayOnlyNarrowTheOperatorPolicy) {
  json tasks = json::parse(R"({"tasks":[{"id":"a","url":"https://a.example.com/"}],
    "browser_policy":{"allowed_origins":["https://a.example.com","http://127.0.0.1:9000","https://evil.com",
                                         "https://example.com"],
                      "allowed_url_patterns":["https://cdn.example.net/lib/*","https://a.example.com/x/*",
                                              "https://*.evil.com/*","https://cdn.example.net/*"],
                      "allow_downloads":true,"allow_file_urls":false},
    "budgets":{"max_pages":20,"max_requests":301}})");
  auto got = issues(tasks, &kOperator, true);
  const std::string base = "/runtime_options/browser_tasks/browser_policy";
  EXPECT_FALSE(got.count(base + "/allowed_origins/0"));
  EXPECT_FALSE(got.count(base + "/allowed_origins/1"));
  EXPECT_NE(got[base + "/allowed_origins/2"].find("not within the operator's browser policy"),
            std::string::npos);
  EXPECT_TRUE(got.count(base + "/allowed_origins/3")) << "*.example.com does not cover example.com";
  EXPECT_FALSE(got.count(base + "/allowed_url_patterns/0")) << "listed by the operator";
  EXPECT_FALSE(got.count(base + "/allowed_url_patterns/1")) << "its literal origin is allowed";
  EXPECT_TRUE(got.count(base + "/allowed_url_patterns/2"));
  EXPECT_TRUE(got.count(base + "/allowed_url_patterns/3")) << "wider than the operator's pattern";
  EXPECT_TRUE(got.count(base + "/allow_downloads"));
  EXPECT_FALSE(got.count(base + "/allow_file_urls"));
  EXPECT_FALSE(got.count("/runtime_options/browser_tasks/budgets/max_pages"));
  EXPECT_NE(got["/runtime_options/browser_tasks/budgets/max_requests"].find("over the operator's 300"),
            std::string::npos);
  EXPECT_EQ(got.size(), 6u);
}

TEST(BrowserPolicy, WithoutNetworkOnlyLoopbackOriginsMayBeAllowed) {
  json op = kOperator;
  json tasks = json::parse(R"({"tasks":[{"id":"a","url":"http://127.0.0.1:8000/"}],
    "browser_policy":{"allowed_origins":["http://127.0.0.1:8000","https://a.example.com"],
                      "allowed_url_patterns":["https://cdn.example.net/lib/*"]}})");
  auto deny = issues(tasks, &op, false);
  const std::string base = "/runtime_options/browser_tasks/browser_policy";
  EXPECT_FALSE(deny.count(base + "/allowed_origins/0"));
  EXPECT_NE(deny[base + "/allowed_origins/1"].find("not a loopback origin"), std::string::npos);
  EXPECT_NE(deny[base + "/allowed_url_patterns/0"].find("loopback"), std::string::npos);
  EXPECT_TRUE(issues(tasks, &op, true).empty());
}

TEST(BrowserPolicy, NoOperatorPolicyAllowsNothingAndAttachEndpointsAreLoopback) {
  json tasks = json::parse(R"({"tasks":[{"id":"a","url":"http://127.0.0.1:8000/"}],
    "browser_policy":{"allowed_origins":["http://127.0.0.1:8000"]},
    "profile":{"mode":"attach","endpoint":"ws://10.0.0.5:9222/devtools/browser/x"}})");
  auto got = issues(tasks, nullptr, true);
  EXPECT_NE(got["/runtime_options/browser_tasks/browser_policy/allowed_origins/0"].find("does not exist"),
            std::string::npos);
  EXPECT_TRUE(got.count("/runtime_options/browser_tasks/profile/endpoint"));
  tasks["profile"]["endpoint"] = "http://127.0.0.1:9222";
  EXPECT_FALSE(issues(tasks, &kOperator, true).count("/runtime_options/browser_tasks/profile/endpoint"));
}

TEST(BrowserPolicy, EffectivePolicyIsTheContractsElseTheOperatorsLoopbackOnlyWithoutNetwork) {
  json own = json::parse(R"({"tasks":[],"browser_policy":{"allowed_origins":["http://127.0.0.1:8000"]},
                             "budgets":{"max_pages":3}})");
  json e = effective_browser_policy(own, &kOperator, false);
  EXPECT_EQ(e["allowed_origins"], json::array({"http://127.0.0.1:8000"}));
  EXPECT_EQ(e["max_pages"], 3);
  EXPECT_EQ(e["max_requests"], 300);
  EXPECT_EQ(e["allow_downloads"], false);
  EXPECT_EQ(e["network"], "deny");

  json inherit = json::parse(R"({"tasks":[]})");
  json d = effective_browser_policy(inherit, &kOperator, false);
  EXPECT_EQ(d["allowed_origins"], json::array({"http://127.0.0.1:*", "http://localhost:*"}));
  EXPECT_EQ(d["dropped_without_network"],
            json::array({"https://*.example.com", "https://example.org", "https://cdn.example.net/lib/*"}));
  EXPECT_EQ(d["source"], "policies/browser_policy.json");
  json n = effective_browser_policy(inherit, &kOperator, true);
  EXPECT_EQ(n["allowed_origins"].size(), 4u);
  EXPECT_FALSE(n.contains("dropped_without_network"));
}

TEST(BrowserPolicy, NetworkIsTheContractsWithinThePacksCeiling) {
  json low = json::parse(R"({"defaults":{"tool_permissions":{"network":"allow"}}})");
  json medium = json::parse(R"({"defaults":{"tool_permissions":{"network":"deny"}}})");
  json capped =
      json::parse(R"({"sandbox":{"network":"deny"},"defaults":{"tool_permissions":{"network":"allow"}}})");
  json asks = json::parse(R"({"tool_permissions":{"network":"allow"}})");
  json silent = json::object();
  EXPECT_TRUE(cp::contract::network_allowed(asks, low));
  EXPECT_TRUE(cp::contract::network_allowed(silent, low));
  EXPECT_FALSE(cp::contract::network_allowed(asks, medium));
  EXPECT_FALSE(cp::contract::network_allowed(asks, capped));
  EXPECT_FALSE(cp::contract::network_allowed(json::parse(R"({"tool_permissions":{}})"), low));
  // A contract breaking its schema elsewhere is judged, not thrown on (validation reports the rest).
  EXPECT_FALSE(cp::contract::network_allowed(json::parse(R"({"tool_permissions":{"network":5}})"), low));
  EXPECT_FALSE(cp::contract::network_allowed(json::parse(R"({"tool_permissions":"allow"})"), low));
}

// browser_policy.schema.json repeats browser_tasks.schema.json's origin pattern (no schema refers to another
// file): they must not drift apart.
TEST(BrowserPolicy, BothSchemasShareOneOriginPattern) {
  json policy = json::parse(cp::core::schema_text("browser_policy"));
  json tasks = json::parse(cp::core::schema_text("browser_tasks"));
  EXPECT_EQ(policy["definitions"]["origin_pattern"], tasks["definitions"]["origin_pattern"]);
  // And the shipped operator policy allows loopback origins only.
  for (const auto& o : json::parse(R"(["http://127.0.0.1:*","http://localhost:*"])"))
    EXPECT_TRUE(cp::core::schema("browser_policy")
                    .valid(json{{"policy", "browser_policy"}, {"allowed_origins", json::array({o})}}));
}
