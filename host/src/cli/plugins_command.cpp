// `cp-host plugins list|inspect`: what the host loads from the plugin folder, and what it refuses.
#include "cli/commands.hpp"
#include "os/sandbox.hpp"
#include "plugin/registry.hpp"
#include "plugin/search_path.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>

namespace cp::cli {
namespace {

using nlohmann::json;

plugin::PluginPolicy load_policy(const Globals& g) {
  auto file = g.root / "policies" / "plugins.json";
  if (!std::filesystem::exists(file)) return {};
  return plugin::PluginPolicy::load(file);
}

void print_refusals(const plugin::Registry& r) {
  for (const auto& x : r.refusals())
    std::cerr << "refused: " << x.file.string() << (x.id.empty() ? "" : " [" + x.id + "]") << ": " << x.reason
              << "\n";
}

}  // namespace

bool probe_needs_configuration(const Globals& g, const plugin::PluginInfo& p) {
  if (std::find(p.capabilities.begin(), p.capabilities.end(), "http") == p.capabilities.end()) return false;
  try {
    const plugin::PluginPolicy policy = load_policy(g);
    auto it = policy.plugins.find(p.id);
    return it == policy.plugins.end() || !it->second.has_config;
  } catch (const std::exception&) {
    return true;  // an unreadable policy configures nothing
  }
}

bool load_plugins(const Globals& g, plugin::Registry& reg) {
  plugin::PluginPolicy policy;
  try {
    policy = load_policy(g);
  } catch (const std::exception& e) {
    std::cerr << "cp-host: " << e.what() << "\n";
    return false;
  }
  if (!plugin::any_folder_exists(g.plugins_dir)) {
    std::cerr << "cp-host: no folder of the plugin search path " << g.plugins_dir.string()
              << " exists (pass --plugins DIR, or set CP_HOST_PLUGINS)\n";
    return false;
  }
  plugin::load_search_path(reg, g.plugins_dir, policy);
  return true;
}

void add_plugins(CLI::App& app, Globals& g, Runner& run) {
  auto* cmd = app.add_subcommand("plugins", "List and inspect the plugins the host loads");
  cmd->require_subcommand(1);

  auto json_list = std::make_shared<bool>(false);
  auto* list =
      cmd->add_subcommand("list", "Show every loaded plugin (kind, id, version, ABI) and every refusal");
  list->add_flag("--json", *json_list, "Machine-readable output");
  list->callback([&g, &run, json_list] {
    run = [&g, json_list]() -> int {
      plugin::Registry reg;
      if (!load_plugins(g, reg)) return kUsage;
      if (*json_list) {
        json search = json::array();
        for (const auto& f : plugin::split_search_path(g.plugins_dir)) search.push_back(f.string());
        json out{{"plugins_dir", g.plugins_dir.string()},
                 {"search_path", search},
                 {"plugins", json::array()},
                 {"refused", plugin::refusals_json(reg)}};
        for (const auto& p : reg.plugins()) {
          // Which folder of the search path it came from; serve's API keeps to the file name.
          out["plugins"].push_back(plugin::to_json(p, false));
          out["plugins"].back()["library_path"] = p.library_path.string();
        }
        std::cout << out.dump(2) << "\n";
      } else {
        std::cout << std::left << std::setw(30) << "ID" << std::setw(16) << "KIND" << std::setw(10)
                  << "VERSION" << std::setw(6) << "ABI"
                  << "LIBRARY\n";
        for (const auto& p : reg.plugins())
          std::cout << std::left << std::setw(30) << p.id << std::setw(16) << plugin::kind_name(p.kind)
                    << std::setw(10) << p.version << std::setw(6)
                    << (std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor))
                    << p.library_path.filename().string() << "\n";
        std::cout << reg.plugins().size() << " plugin(s) loaded from " << g.plugins_dir.string() << ", "
                  << reg.refusals().size() << " refused\n";
        print_refusals(reg);
      }
      return kOk;
    };
  });

  struct InspectOpts {
    std::string id;
    bool json = false;
  };
  auto io = std::make_shared<InspectOpts>();
  auto* inspect =
      cmd->add_subcommand("inspect", "Show one plugin: kind, version, ABI, capabilities, config schema");
  inspect->add_option("id", io->id, "Plugin id")->required();
  inspect->add_flag("--json", io->json, "Machine-readable output");
  inspect->callback([&g, &run, io] {
    run = [&g, io]() -> int {
      plugin::Registry reg;
      if (!load_plugins(g, reg)) return kUsage;
      const plugin::PluginInfo* p = reg.find(io->id);
      if (!p) {
        for (const auto& r : reg.refusals())
          if (r.id == io->id) {
            std::cerr << "cp-host: plugin '" << io->id << "' was refused: " << r.reason << " ("
                      << r.file.string() << ")\n";
            return kInvalid;
          }
        std::cerr << "cp-host: no plugin '" << io->id << "' in " << g.plugins_dir.string() << "; loaded:";
        for (const auto& q : reg.plugins()) std::cerr << " " << q.id;
        std::cerr << "\n";
        return kInvalid;
      }
      json j = plugin::to_json(*p, true);
      // Which sandbox this plugin's processes get: the run sandbox for whatever a runner or gate spawns
      // during a run, on this host's kernel.
      os::SandboxSupport support = os::probe_sandbox_support();
      bool spawns =
          std::find(p->capabilities.begin(), p->capabilities.end(), "spawn") != p->capabilities.end();
      j["sandbox"] = {
          {"kernel", support.to_json()},
          {"spawned_processes",
           !spawns ? "none (the plugin declares no spawn capability)"
           : support.landlock_abi > 0
               ? "run sandbox: landlock+seccomp (Landlock ABI " + std::to_string(support.landlock_abi) + ")"
               : "no Landlock on this kernel: runs are refused unless the pack allows running unsandboxed"},
          {"plugin_code",
           p->isolation == "isolated" ? "cp-plugin-worker process (not sandboxed)" : "in the host process"}};
      if (io->json) {
        std::cout << j.dump(2) << "\n";
        return kOk;
      }
      std::cout << "id:           " << p->id << "\n"
                << "kind:         " << plugin::kind_name(p->kind) << "\n"
                << "version:      " << p->version << "\n"
                << "description:  " << p->description << "\n"
                << "abi:          " << p->abi_major << "." << p->abi_minor << "\n"
                << "library:      " << p->library_path.string() << " (" << p->library_name << " "
                << p->library_version << ")\n"
                << "capabilities: " << json(p->capabilities).dump() << "\n"
                << "sandbox:      " << j["sandbox"]["spawned_processes"].get<std::string>() << "\n"
                << "config:       " << p->config_json << "\n"
                << "config schema:\n"
                << j["config_schema"].dump(2) << "\n";
      return kOk;
    };
  });
}

}  // namespace cp::cli
