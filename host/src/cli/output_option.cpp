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
    // Every spelling of a good value is translated before parsing; a value that still reaches CLI11 was
    // written in a form the translation does not know (clustered, as in -qo json), and is refused rather
    // than ignored.
    app.add_option(short_free ? "-o,--output" : "--output", *sinks.back(),
                   "text (default) or json (the same as --json)")
        ->check(CLI::Validator(
            [](std::string& v) {
              return "'" + v +
                     "' given in a form not understood; write --output json, --output=json or -o json";
            },
            "json|text"));
  }
  for (auto* c : app.get_subcommands([](CLI::App* c) { return !c->get_name().empty(); })) declare(*c, sinks);
}

}  // namespace

void add_output_options(CLI::App& app) {
  // The values never arrive (the words are translated first); the sinks only give CLI11 somewhere to point.
  static std::vector<std::shared_ptr<std::string>> sinks;
  declare(app, sinks);
}

// The option `word` of `at` or of a command above it (a global option given after the command), or null.
const CLI::Option* option_here_or_above(CLI::App* at, const std::string& word) {
  for (CLI::App* a = at; a; a = a->get_parent())
    if (const CLI::Option* o = a->get_option_no_throw(word)) return o;
  return nullptr;
}

std::vector<std::string> translate_output(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> out{argv[0]};
  CLI::App* at = &app;
  bool json_flag = false;  // --json given to the command being read
  bool text = false;       // --output text given to it
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
          json_flag = text = false;
          break;
        }
      out.push_back(w);
      continue;
    }
    // --output VALUE, --output=VALUE, -o VALUE, -oVALUE of a command that has --json.
    const bool short_is_output = at->get_option_no_throw("-o") == at->get_option_no_throw("--output");
    std::string value;
    bool matched = false;
    int used = 0;
    if (has_json_flag(*at)) {
      if ((w == "--output" || (w == "-o" && short_is_output)) && i + 1 < argc) {
        value = argv[i + 1];
        matched = true;
        used = 1;
      } else if (w.rfind("--output=", 0) == 0) {
        value = w.substr(9);
        matched = true;
      } else if (w.size() > 2 && w.rfind("-o", 0) == 0 && short_is_output) {
        value = w.substr(w[2] == '=' ? 3 : 2);
        matched = true;
      }
    }
    if (matched && (value == "json" || value == "text")) {
      (value == "json" ? json_flag : text) = true;
      if (value == "json") out.emplace_back("--json");
      i += used;
    } else {
      if (w == "--json") json_flag = true;
      out.push_back(w);  // anything else, a bad value included, is CLI11's to judge
      if (const CLI::Option* o = option_here_or_above(at, w);
          o && o->get_items_expected_min() > 0 && i + 1 < argc)
        out.emplace_back(argv[++i]);
    }
    if (json_flag && text)
      throw CLI::ValidationError("--output", "text contradicts --json (or --output json); give one of them");
  }
  return out;
}

}  // namespace cp::cli
