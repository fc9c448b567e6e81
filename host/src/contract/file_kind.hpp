// Which schema applies to a file cp-host reads: by its folder (contracts/, packs/, policies/) first, then by
// what it holds.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <string>

namespace cp::contract {

// The schema name ("task_contract", "pack", "command_allowlist", ...) or empty when it cannot be told.
std::string detect_schema(const std::filesystem::path& file, const nlohmann::json& doc);

}  // namespace cp::contract
