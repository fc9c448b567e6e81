// The contract compiler: merges a validated task contract with its pack's defaults and the policies it
// runs under into the compiled contract (schemas/compiled_contract.schema.json) that the runner and the
// gates see and the bundle keeps as contract.json, with its sha256 in the manifest.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace cp::contract {

// A pack or policy that cannot be read; says which file and why.
struct CompileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CompiledContract {
  nlohmann::json document;  // {schema_version, contract, pack, gates, policies}
  std::string sha256;       // of document.dump() (keys sorted, no spaces)
};

// The pack used when a contract names none.
inline constexpr const char* kDefaultPack = "medium";

// Merge rules: a contract field wins over the pack default, except forbidden_actions, which are the union
// (a contract may add prohibitions, never drop its pack's). `root` holds packs/ and policies/.
CompiledContract compile_contract(const nlohmann::json& contract, const std::filesystem::path& root);

}  // namespace cp::contract
