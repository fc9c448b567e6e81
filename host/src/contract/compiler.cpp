#include "contract/compiler.hpp"

#include "contract/role_config.hpp"
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

// The assigned role's config, resolved now so the run keeps what it was compiled with whatever the file
// says later: the prompt's text and sha256 go into the compiled contract (the runner reads them from
// there), and the role's runtime binding fills the provider and model a contract on the role's runner
// leaves out.
json resolve_role(json& merged, const json& role_config, const fs::path& root) {
  std::string role = merged.value("assigned_agent", json::object()).value("role", "");
  json entry = role_config_entry(role_config, role);
  if (!entry.is_object()) return nullptr;
  if (entry.contains("runtime") && entry["runtime"].is_object()) {
    const json& rt = entry["runtime"];
    json& ro = merged["runtime_options"];
    if (rt.value("runner", "") == ro.value("runner", ""))
      for (const char* k : {"provider", "model"})
        if (rt.contains(k) && !ro.contains(k)) ro[k] = rt[k];
  }
  if (!entry.contains("prompt_ref") || !entry["prompt_ref"].is_string()) return nullptr;
  std::string why;
  auto prompt = read_role_prompt(root, entry["prompt_ref"].get<std::string>(), why);
  if (!prompt) throw CompileError("role '" + role + "' in " + std::string(kRoleConfigPath) + ": " + why);
  return json{{"role", role},
              {"prompt_ref", prompt->ref},
              {"sha256", prompt->sha256},
              {"bytes", prompt->text.size()},
              {"text", prompt->text}};
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

  // Optional: what each role's agent is told and may run on (allowed_runners were checked by validation).
  json role_prompt;
  if (fs::exists(role_config_file(root))) {
    json rc = read_required(role_config_file(root), "policy role_config");
    rc.erase("$schema");
    role_prompt = resolve_role(merged, rc, root);
    policies["role_config"] = rc;
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
  if (role_prompt.is_object()) c.document["role_prompt"] = role_prompt;
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
