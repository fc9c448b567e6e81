// `--output json|text` (`-o`) on every command that has a --json flag, as gh and kubectl spell it; --json
// stays as its alias. The option is declared on each such command (so that its help shows it) and translated
// before parsing: `--output json` becomes `--json`, `--output text` is the default and is dropped.
#include "cli/commands.hpp"

#include <CLI/CLI.hpp>

#include <memory>

namespace cp::cli {

namespace {

bool has_json_flag(CLI::App& app) {
  const CLI::Option* j = app.get_option_no_throw("--json");
  return j && j->get_items_expected_min() == 0;
}

void declare(CLI::App& app, std::vector<std::shared_ptr<std::string>>& sinks) {
  if (has_json_flag(app) && !app.get_option_no_throw("--output")) {
    sinks.push_back(std::make_shared<std::string>());
    const bool short_free = !app.get_option_no_throw("-o");
    app.add_option(short_free ? "-o,--output" : "--output", *sinks.back(),
                   "text (default) or json (the same as --json)")
        ->check(CLI::IsMember({"text", "json"}));
  }
  for (auto* c : app.get_subcommands([](CLI::App* c) { return !c->get_name().empty(); })) declare(*c, sinks);
}

}  // namespace

void add_output_options(CLI::App& app) {
  // The values never arrive (the words are translated first); the sinks only give CLI11 somewhere to point.
  static std::vector<std::shared_ptr<std::string>> sinks;
  declare(app, sinks);
}

std::vector<std::string> translate_output(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> out{argv[0]};
  CLI::App* at = &app;
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w == "--") {
      for (; i < argc; ++i) out.emplace_back(argv[i]);
      break;
    }
    if (!w.empty() && w[0] != '-') {
      for (auto* c : at->get_subcommands([](CLI::App* c) { return !c->get_name().empty(); }))
        if (c->check_name(w)) {
          at = c;
          break;
        }
      out.push_back(w);
      continue;
    }
    // --output VALUE, --output=VALUE, -o VALUE of a command that has --json.
    std::string value;
    bool matched = false;
    if ((w == "--output" ||
         (w == "-o" && at->get_option_no_throw("-o") == at->get_option_no_throw("--output"))) &&
        i + 1 < argc && has_json_flag(*at)) {
      value = argv[i + 1];
      matched = true;
    } else if (w.rfind("--output=", 0) == 0 && has_json_flag(*at)) {
      value = w.substr(9);
      matched = true;
    }
    if (matched && (value == "json" || value == "text")) {
      if (value == "json") out.emplace_back("--json");
      if (w.find('=') == std::string::npos) ++i;
      continue;
    }
    out.push_back(w);  // anything else, a bad value included, is CLI11's to judge
    if (const CLI::Option* o = at->get_option_no_throw(w);
        o && o->get_items_expected_min() > 0 && i + 1 < argc)
      out.emplace_back(argv[++i]);
  }
  return out;
}

}  // namespace cp::cli
