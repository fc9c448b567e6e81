// `cp-host probe [ID...]`: run capability probes (toolchain, providers) and show what they found.
#include "cli/commands.hpp"
#include "plugin/probe_call.hpp"
#include "plugin/registry.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

using nlohmann::json;

void add_probe(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::vector<std::string> ids;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "probe", "Run capability probes and print what they report (exit 1 if any is not ok)");
  cmd->add_option("ids", o->ids, "Probe plugin ids (default: every probe)");
  cmd->add_flag("--json", o->json, "Machine-readable output");
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      plugin::Registry reg;
      if (!load_plugins(g, reg)) return kUsage;
      std::vector<const plugin::PluginInfo*> probes;
      json all = json::object();
      if (o->ids.empty()) {
        // A probe that reaches a remote service (a model provider) runs by default only once it is
        // configured: offline, or before a provider is chosen, `cp-host probe` must not fail on it.
        for (const auto& p : reg.plugins())
          if (p.kind == plugin::Kind::probe) {
            if (probe_needs_configuration(g, p))
              all[p.id] = json{{"status", "skipped"},
                               {"message",
                                "not configured: give it a config in policies/plugins.json, or "
                                "name it (cp-host probe " +
                                    p.id + ")"},
                               {"capabilities", json::object()}};
            else
              probes.push_back(&p);
          }
      } else {
        for (const auto& id : o->ids) {
          const auto* p = reg.find(id);
          if (!p || p->kind != plugin::Kind::probe) {
            std::cerr << "cp-host: no probe plugin '" << id << "'\n";
            return kUsage;
          }
          probes.push_back(p);
        }
      }
      bool ok = true;
      for (const auto* p : probes) {
        json r = plugin::call_probe(*p);
        ok = ok && r.value("status", "") == "ok";
        all[p->id] = r;
      }
      if (o->json) {
        std::cout << all.dump(2) << "\n";
      } else {
        for (auto it = all.begin(); it != all.end(); ++it) {
          std::cout << it.key() << ": " << it.value()["status"].get<std::string>();
          if (it.value().contains("message"))
            std::cout << " (" << it.value()["message"].get<std::string>() << ")";
          std::cout << "\n";
          for (auto c = it.value()["capabilities"].begin(); c != it.value()["capabilities"].end(); ++c)
            std::cout << "  " << c.key() << ": " << c.value().dump() << "\n";
        }
      }
      return ok ? kOk : kInvalid;
    };
  });
}

}  // namespace cp::cli
