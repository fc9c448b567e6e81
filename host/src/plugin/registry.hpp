// The set of loaded plugins. Loads every .so of a directory, checks each against the ABI rules and its
// config against the schema it publishes, refuses what is wrong (saying which file and why) and keeps
// loading the rest.
#pragma once

#include "plugin/plugin_info.hpp"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cp::plugin {

// Per-plugin settings from policies/plugins.json.
struct PluginSettings {
  bool enabled = true;
  std::string isolation;  // "in_process" | "isolated" | "" (default: see PluginInfo::isolation)
  IsolationLimits limits;
  std::string config_json = "{}";
  bool has_config = false;
};

struct PluginPolicy {
  std::map<std::string, PluginSettings, std::less<>> plugins;
  // Reads policies/plugins.json. Throws std::runtime_error with file and pointer on a bad file.
  static PluginPolicy load(const std::filesystem::path& file);
};

struct Refusal {
  std::filesystem::path file;
  std::string id;  // the descriptor refused, or empty when the whole library was refused
  std::string reason;
};

class Registry {
 public:
  // Loads every regular file ending in .so in `dir` (not recursive), in name order. A missing directory
  // is a refusal, not an exception.
  void load_directory(const std::filesystem::path& dir, const PluginPolicy& policy = {});
  void load_file(const std::filesystem::path& file, const PluginPolicy& policy = {});

  const std::vector<PluginInfo>& plugins() const { return plugins_; }
  const std::vector<Refusal>& refusals() const { return refusals_; }
  const PluginInfo* find(std::string_view id) const;

 private:
  void refuse(const std::filesystem::path& file, std::string id, std::string reason);
  std::vector<PluginInfo> plugins_;
  std::vector<Refusal> refusals_;
};

// Every refusal as {file, id, reason}: what `cp-host plugins --json` and GET /api/probes show.
nlohmann::json refusals_json(const Registry& r);

// The size a struct had in ABI 1.0. A struct_size below it is "short": the plugin was built against a
// header the host cannot read safely.
size_t v1_0_size_of_manifest();
size_t v1_0_size_of_descriptor();
size_t v1_0_size_of_vtable(Kind kind);

// The CP_FLAG_GATE_* bits the host applies to a gate descriptor (PluginInfo::flags): a gate built for ABI
// 1.2 or later declares them; a 1.0/1.1 gate, whose ABI had none, gets what those hosts did by id
// (diff_scope and forbidden_actions: policy; acceptance_tests: needs a completed runner; others: none).
uint32_t effective_gate_flags(uint32_t abi_minor, std::string_view id, uint32_t declared);

}  // namespace cp::plugin
