// What the host knows about one loaded plugin descriptor.
#pragma once

#include <cortexpilot/plugin.h>
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cp::plugin {

enum class Kind { runner, gate, probe, retention_lane, planner };

std::string_view kind_name(Kind kind);
std::optional<Kind> kind_from_name(std::string_view name);

// Resource limits of an isolated plugin's worker process (policies/plugins.json "limits").
struct IsolationLimits {
  uint64_t address_space_mb = 4096;  // RLIMIT_AS
  uint64_t cpu_seconds = 900;        // RLIMIT_CPU
  uint64_t open_files = 256;         // RLIMIT_NOFILE
};

struct PluginInfo {
  Kind kind = Kind::gate;
  std::string id;
  std::string version;
  std::string description;
  std::string config_schema;  // JSON Schema text, as published
  std::vector<std::string> capabilities;
  uint32_t flags = 0;  // CP_FLAG_* bits of `kind`; a gate's as effective_gate_flags() (registry.hpp) says
  std::filesystem::path library_path;
  std::string library_name;
  std::string library_version;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  const void* vtable = nullptr;    // cp_*_vtable of `kind`; valid while `library` lives
  std::string config_json = "{}";  // the validated config this plugin will be created with
  // "in_process" or "isolated" (served by cp-plugin-worker). Policy decides; the default is in_process for
  // first-party libraries (named cp-* and in the installed folder, installed_folder.hpp) and isolated for
  // everything else.
  std::string isolation = "in_process";
  IsolationLimits limits;
  std::shared_ptr<void> library;  // keeps the .so mapped
};

// How `plugins list --json` and GET /api/plugins show a plugin; with_schema adds its config schema,
// config and library path.
nlohmann::json to_json(const PluginInfo& p, bool with_schema);

}  // namespace cp::plugin
