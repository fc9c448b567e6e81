#include "effective_policy.hpp"

#include "url_policy.hpp"

#include <algorithm>

namespace cp::browser {

using nlohmann::json;

namespace {

const char* kBase = "/runtime_options/browser_tasks/browser_policy";

}  // namespace

json default_operator_policy() {
  return {{"allowed_origins", json::array({"http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"})},
          {"allow_downloads", false},
          {"allow_file_urls", false}};
}

json effective_policy(const json& operator_policy, const json& browser_tasks, bool network_allowed) {
  const json op = operator_policy.is_object() ? operator_policy : default_operator_policy();
  UrlPolicy wider(op);  // throws on a malformed operator policy: the run errors, nothing loads
  const json mine = browser_tasks.value("browser_policy", json::object());
  json out = json::object();
  // Origins: the contract's (each inside an operator origin), or the operator's when it names none.
  if (mine.contains("allowed_origins")) {
    const json& list = mine["allowed_origins"];
    for (size_t i = 0; i < list.size(); ++i) {
      std::string ptr = std::string(kBase) + "/allowed_origins/" + std::to_string(i);
      auto p = list[i].is_string() ? OriginPattern::parse(list[i].get<std::string>()) : std::nullopt;
      if (!p) throw PolicyRefusal(ptr, "not an origin pattern (scheme://host[:port])");
      bool inside = false;
      for (const auto& w : wider.origins()) inside = inside || p->within(w);
      if (!inside)
        throw PolicyRefusal(ptr,
                            list[i].get<std::string>() +
                                " is not allowed by policies/browser_policy.json; add it there or narrow it");
    }
    out["allowed_origins"] = list;
  } else {
    out["allowed_origins"] = op.value("allowed_origins", json::array());
  }
  // A contract's whole-URL pattern must begin with a literal origin the operator allows (or be one of the
  // operator's own patterns); the operator's count when the contract names none.
  if (mine.contains("allowed_url_patterns")) {
    const json& list = mine["allowed_url_patterns"];
    const json ops = op.value("allowed_url_patterns", json::array());
    for (size_t i = 0; i < list.size(); ++i) {
      std::string pat = list[i].is_string() ? list[i].get<std::string>() : "";
      bool ok = std::find(ops.begin(), ops.end(), list[i]) != ops.end();
      size_t sep = pat.find("://");
      size_t path = sep == std::string::npos ? sep : pat.find('/', sep + 3);
      if (!ok && path != std::string::npos && pat.find('*') > path) {
        auto o = origin_of(pat.substr(0, path));
        for (const auto& w : wider.origins()) ok = ok || (o && w.matches(*o));
        if (o && !network_allowed && !is_loopback_host(o->host)) ok = false;
      }
      if (!ok)
        throw PolicyRefusal(std::string(kBase) + "/allowed_url_patterns/" + std::to_string(i),
                            pat + " does not begin with an origin policies/browser_policy.json allows");
    }
    out["allowed_url_patterns"] = list;
  } else {
    out["allowed_url_patterns"] = op.value("allowed_url_patterns", json::array());
  }
  for (const char* flag : {"allow_downloads", "allow_file_urls"}) {
    bool asked = mine.value(flag, false);
    if (asked && !op.value(flag, false))
      throw PolicyRefusal(
          std::string(kBase) + "/" + flag,
          std::string(flag) + " is false in policies/browser_policy.json; a contract cannot turn it on");
    out[flag] = mine.contains(flag) ? asked : op.value(flag, false);
  }
  if (!network_allowed) {
    // The operator's own wider entries are dropped; a contract's explicit one is refused.
    json kept = json::array();
    const json& list = out["allowed_origins"];
    for (size_t i = 0; i < list.size(); ++i) {
      auto p = OriginPattern::parse(list[i].get<std::string>());
      if (p && !p->subdomains && is_loopback_host(p->host)) {
        kept.push_back(list[i]);
        continue;
      }
      if (!mine.contains("allowed_origins")) continue;
      throw PolicyRefusal(
          std::string(kBase) + "/allowed_origins/" + std::to_string(i),
          list[i].get<std::string>() +
              " is not a loopback origin, and tool_permissions.network is deny: allow the network in "
              "the contract (and its pack), or allow only 127.0.0.1/localhost origins");
    }
    out["allowed_origins"] = kept;
    if (!mine.contains("allowed_url_patterns")) out["allowed_url_patterns"] = json::array();
  }
  return out;
}

}  // namespace cp::browser
