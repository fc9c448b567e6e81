// `cp-host schemas list|show NAME`: the schemas compiled into this cp-host.
#include "cli/commands.hpp"
#include "core/schema_catalog.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace cp::cli {

void add_schemas(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("schemas", "List or print the JSON Schemas built into cp-host");
  cmd->require_subcommand(1);
  cmd->add_subcommand("list", "Names of all schemas")->callback([&run] {
    run = [] {
      for (const auto& n : core::schema_names()) std::cout << n << "\n";
      return int(kOk);
    };
  });
  auto name = std::make_shared<std::string>();
  auto* show = cmd->add_subcommand("show", "Print one schema");
  show->add_option("name", *name, "Schema name, e.g. task_contract")->required();
  show->callback([&run, name] {
    run = [name] {
      auto text = core::schema_text(*name);
      if (text.empty()) {
        std::cerr << "cp-host: no schema '" << *name << "' (see `cp-host schemas list`)\n";
        return int(kUsage);
      }
      std::cout << text;
      return int(kOk);
    };
  });
}

}  // namespace cp::cli
