// `cp-host schemas list|show NAME`: the schemas compiled into this cp-host.
#include "cli/commands.hpp"
#include "core/schema_catalog.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

void add_schemas(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("schemas", "List or print the JSON Schemas built into cp-host");
  cmd->require_subcommand(1);
  auto list_json = std::make_shared<bool>(false);
  auto* list = cmd->add_subcommand("list", "Names of all schemas");
  list->add_flag("--json", *list_json, "Print {schemas: [names], count}");
  list->callback([&run, list_json] {
    run = [list_json] {
      if (*list_json) {
        const auto names = core::schema_names();
        std::cout << nlohmann::json{{"schemas", names}, {"count", names.size()}}.dump(2) << "\n";
        return int(kOk);
      }
      for (const auto& n : core::schema_names()) std::cout << n << "\n";
      return int(kOk);
    };
  });
  auto name = std::make_shared<std::string>();
  auto* show = cmd->add_subcommand("show", "Print one schema");
  show->add_option("name", *name, "Schema name, e.g. task_contract")->required();
  // The schema is JSON already; the flag is accepted so that `--output json` works on every read command.
  show->add_flag("--json")->description("The output is JSON in any case");
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
