#include "contract/compiler.hpp"

#include "core/sha256.hpp"

#include <fstream>

namespace cp::contract {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_required(const fs::path& file, const std::string& what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CompileError("cannot read " + what + " " + file.string());
  json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw CompileError(what + " " + file.string() + " is not a JSON object (run `cp-host validate`)");
  return doc;
}

}  // namespace

CompiledContract compile_contract(const json& contract, const fs::path& root) {
  json merged = contract;
  merged.erase("$schema");
  std::string pack_id = contract.at("runtime_options").value("pack", std::string(kDefaultPack));
  json pack = read_required(root / "packs" / (pack_id + ".json"), "pack '" + pack_id + "'");
  pack.erase("$schema");

  json defaults = pack.value("defaults", json::object());
  for (const auto& [key, value] : defaults.items()) {
    if (key == "forbidden_actions") continue;
    if (!merged.contains(key)) merged[key] = value;
  }
  json forbidden = merged.value("forbidden_actions", json::array());
  for (const auto& f : defaults.value("forbidden_actions", json::array()))
    if (std::find(forbidden.begin(), forbidden.end(), f) == forbidden.end()) forbidden.push_back(f);
  merged["forbidden_actions"] = forbidden;
  merged["runtime_options"]["pack"] = pack_id;

  json gates = json::array();
  for (const auto& g : pack.value("gates", json::array())) {
    json gate{{"plugin", g.at("plugin")}, {"required", g.value("required", true)}};
    if (g.contains("config")) gate["config"] = g["config"];
    if (g.contains("timeout_sec")) gate["timeout_sec"] = g["timeout_sec"];
    gates.push_back(gate);
  }

  json policies = json::object();
  for (const char* name : {"command_allowlist", "forbidden_actions", "role_registry"}) {
    json p = read_required(root / "policies" / (std::string(name) + ".json"), std::string("policy ") + name);
    p.erase("$schema");
    policies[name] = p;
  }

  // Optional: the declarative rules the `policy` gate applies when a pack names them.
  if (fs::exists(root / "policies" / "policy_rules.json")) {
    json rules = read_required(root / "policies" / "policy_rules.json", "policy policy_rules");
    rules.erase("$schema");
    policies["policy_rules"] = rules;
  }

  // Optional: the operator's browser policy, which the browser runner reads at /policies/browser_policy of
  // its input and which a contract's own browser_policy can only narrow (checked by validation).
  if (fs::exists(root / "policies" / "browser_policy.json")) {
    json browser = read_required(root / "policies" / "browser_policy.json", "policy browser_policy");
    browser.erase("$schema");
    policies["browser_policy"] = browser;
  }

  CompiledContract c;
  c.document = json{{"schema_version", 1},
                    {"contract", merged},
                    {"pack",
                     {{"pack_id", pack_id},
                      {"governance_level", pack.value("governance_level", "")},
                      {"requires_approval", pack.value("requires_approval", false)}}},
                    {"gates", gates},
                    {"policies", policies}};
  if (pack.contains("approval")) c.document["pack"]["approval"] = pack["approval"];
  // The sandbox settings are part of what the contract's sha256 binds: a run cannot be replayed looser.
  if (pack.contains("sandbox")) c.document["pack"]["sandbox"] = pack["sandbox"];
  // The most network a contract of this pack may ask for: the pack's sandbox.network, else its default
  // tool_permissions.network, else deny. A contract asking for more does not get it.
  std::string ceiling = pack.value("sandbox", json::object()).value("network", "");
  if (ceiling.empty() && pack.contains("defaults") && pack["defaults"].contains("tool_permissions"))
    ceiling = pack["defaults"]["tool_permissions"].value("network", "");
  c.document["pack"]["network_ceiling"] = ceiling == "allow" ? "allow" : "deny";
  c.sha256 = core::sha256_hex(c.document.dump());
  return c;
}

}  // namespace cp::contract
