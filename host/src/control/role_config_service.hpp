// Reading and changing a role's config (policies/role_config.json, contract/role_config.hpp): what
// `cp-host roles show|preview|apply` and the API's /api/agents/roles/{role}/config routes call. A change is
// checked as `cp-host validate` checks the file (schema, registered role, readable prompt, loaded runners,
// the runtime runner among the allowed ones), previewed as a diff against the current entry, and applied
// atomically with a host event (ROLE_CONFIG_APPLIED) and a governance log line. Runs compile the config
// when they start, so an apply reaches the next runs only.
#pragma once

#include "control/actor.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::control {

// A role name as the registry spells them: [A-Z][A-Z_]*, at most 64 characters.
bool valid_role_name(const std::string& role);

// What one role is: its registry entry, its config entry and its prompt (text when `with_text`), the runners
// it may use (null: any), and the config file's state. nullopt when the role is neither registered nor
// configured.
std::optional<nlohmann::json> role_view(const std::filesystem::path& root, const std::string& role,
                                        bool with_text);

// Every role the registry or the config names (viewed without prompt text), and the file's state:
// {roles: [...], role_config: {path, exists, sha256, valid, problems}}.
nlohmann::json roles_overview(const std::filesystem::path& root);

struct RoleConfigProblem {
  std::string pointer;  // into the request: /config/... for the role's entry, /prompt for the prompt text
  std::string rule;     // a schema keyword, or xref:<what>
  std::string message;
  std::string expected;
};

// A requested change of one role: its new entry (the whole of it), optionally a new prompt text written to
// the entry's prompt_ref (under policies/roles/; default policies/roles/<role>.md), optionally the sha256
// of the config file the caller saw (compare-and-swap), and why.
struct RoleChange {
  nlohmann::json config;
  std::optional<std::string> prompt;
  std::string base_sha256;
  std::string reason;
};

// Reads {"config": {...}, "prompt"?, "base_sha256"?, "reason"?}; nullopt with problems (pointers into
// the body) when it is not that shape.
std::optional<RoleChange> parse_role_change(const nlohmann::json& body,
                                            std::vector<RoleConfigProblem>& problems);

struct RoleConfigResult {
  enum class Outcome {
    previewed,  // preview: valid, nothing written
    applied,    // written, event recorded
    unchanged,  // apply of what is already there: nothing written, no event
    invalid,    // problems says what and where
    not_found,  // the role is not registered
    conflict,   // base_sha256 is not the file's, or the file cannot be changed safely
    too_large,  // the prompt text is over the limit
    from_run,   // asked from inside a run's process tree
    error,      // cp-host failed (a write, the audit event); nothing stays changed
  } outcome = Outcome::error;
  std::string message;
  std::vector<RoleConfigProblem> problems;
  nlohmann::json current;   // the role's entry now (null: none)
  nlohmann::json proposed;  // the entry after the change
  nlohmann::json changes;   // JSON Patch (RFC 6902) current -> proposed
  nlohmann::json prompt;    // {prompt_ref, current_sha256, proposed_sha256, changed, written, bytes}
  std::string config_sha256_before, config_sha256_after;
  nlohmann::json event;  // apply: the host event as written
};

// `registry` (may be null) is what runner ids are checked against.
RoleConfigResult preview_role_config(const std::filesystem::path& root, const plugin::Registry* registry,
                                     const std::string& role, const RoleChange& change);
RoleConfigResult apply_role_config(const std::filesystem::path& root, const plugin::Registry* registry,
                                   const std::string& role, const RoleChange& change, const Actor& actor);

const char* outcome_name(RoleConfigResult::Outcome o);
// The answer both the CLI (--json) and the API give: outcome, message, problems, current, proposed,
// changes, prompt, shas, event.
nlohmann::json to_json(const RoleConfigResult& r);

}  // namespace cp::control
