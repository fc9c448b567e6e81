// `cp-host probe [ID...]`: run capability probes (toolchain, providers) and show what they found.
#include "cli/commands.hpp"
#include "contract/schema_catalog.hpp"
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

// A probe's answer, fail-closed: a failed call or an answer that breaks the schema is status "error".
json run_probe(const plugin::PluginInfo& info) {
  std::string error;
  auto inst = plugin::Instance::create(info, error);
  if (!inst) return {{"status", "error"}, {"capabilities", json::object()}, {"ttl_seconds", 0}, {"message", error}};
  plugin::CallContext ctx(info.id);
  auto out = inst->probe(ctx);
  if (!out.ok()) return {{"status", "error"}, {"capabilities", json::object()}, {"ttl_seconds", 0}, {"message", out.error}};
  json doc = json::parse(out.output, nullptr, false);
  if (doc.is_discarded())
    return {{"status", "error"}, {"capabilities", json::object()}, {"ttl_seconds", 0}, {"message", "probe returned invalid JSON"}};
  auto v = contract::schema("probe_result").validate(doc);
  if (!v.empty())
    return {{"status", "error"},
            {"capabilities", json::object()},
            {"ttl_seconds", 0},
            {"message", "probe output breaks schemas/probe_result.schema.json at " + v[0].pointer + ": " + v[0].message}};
  return doc;
}

}  // namespace

void add_probe(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::vector<std::string> ids;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("probe", "Run capability probes and print what they report (exit 1 if any is not ok)");
  cmd->add_option("ids", o->ids, "Probe plugin ids (default: every probe)");
  cmd->add_flag("--json", o->json, "Machine-readable output");
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      plugin::Registry reg;
      if (!std::filesystem::is_directory(g.plugins_dir)) {
        std::cerr << "cp-host: plugin folder " << g.plugins_dir.string() << " does not exist (pass --plugins DIR)\n";
        return kUsage;
      }
      reg.load_directory(g.plugins_dir);
      std::vector<const plugin::PluginInfo*> probes;
      if (o->ids.empty()) {
        for (const auto& p : reg.plugins())
          if (p.kind == plugin::Kind::probe) probes.push_back(&p);
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
      json all = json::object();
      bool ok = true;
      for (const auto* p : probes) {
        json r = run_probe(*p);
        ok = ok && r.value("status", "") == "ok";
        all[p->id] = r;
      }
      if (o->json) {
        std::cout << all.dump(2) << "\n";
      } else {
        for (auto it = all.begin(); it != all.end(); ++it) {
          std::cout << it.key() << ": " << it.value()["status"].get<std::string>();
          if (it.value().contains("message")) std::cout << " (" << it.value()["message"].get<std::string>() << ")";
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
