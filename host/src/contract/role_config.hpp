// The role config (policies/role_config.json, schemas/role_config.schema.json): per role, the system prompt
// its agent is given (`prompt_ref`, a file under policies/), the runtime binding (runner, provider, model)
// and the runners it may use (`allowed_runners`). The role registry (policies/role_registry.json) says which
// roles exist and who may approve; this file says what each role's agent does. Everything here reads the
// project's files only; writing a new config is control/role_config_service.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::contract {

// A prompt is text an agent reads before its task: small. Larger files are refused unread.
inline constexpr std::uintmax_t kMaxRolePromptBytes = 64u << 10;
// Where the file lives under a project root, and where prompts written through the API may go.
inline constexpr const char* kRoleConfigPath = "policies/role_config.json";
inline constexpr const char* kRolePromptsDir = "policies/roles/";

// <root>/policies/role_config.json.
std::filesystem::path role_config_file(const std::filesystem::path& root);

// Why `ref` cannot be a prompt_ref, or empty when it may: it must be a relative '/'-separated path that
// starts with "policies/", with no empty, "." or ".." segment, no backslash or NUL, at most 256 bytes.
std::string prompt_ref_problem(const std::string& ref);

struct RolePrompt {
  std::string ref;     // as written in the config
  std::string text;    // the file's bytes (UTF-8)
  std::string sha256;  // of text
};

// Reads the prompt `ref` names under `root`: no component of the path is followed if it is a symlink, the
// file must be regular, at most kMaxRolePromptBytes and UTF-8 without NUL. nullopt with `why` otherwise.
std::optional<RolePrompt> read_role_prompt(const std::filesystem::path& root, const std::string& ref,
                                           std::string& why);

// Why `text` cannot be a prompt (too large, not UTF-8, holds a NUL), or empty.
std::string prompt_text_problem(const std::string& text);

// The entry of `role` in a role config document, or null when it has none.
nlohmann::json role_config_entry(const nlohmann::json& config, const std::string& role);

// The runners `role` may use under `config`: nullopt when any runner may (no config, the role is not in it,
// or its entry names no allowed_runners); an empty list when none may.
std::optional<std::vector<std::string>> allowed_runners_of(const nlohmann::json& config,
                                                           const std::string& role);

// The project root a role config file resolves its prompt_refs against: the folder holding its policies/
// folder, or `fallback` when the file is not in a folder named policies.
std::filesystem::path role_config_root(const std::filesystem::path& file,
                                       const std::filesystem::path& fallback);

}  // namespace cp::contract
