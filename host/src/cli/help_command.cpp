// `cp-host help [COMMAND...]`, `cp-host version [--json]`, and the check, before the arguments are parsed,
// that every command word names a command (with "did you mean" when it does not): CLI11 alone would answer a
// mistyped command with "A subcommand is required".
#include "cli/commands.hpp"
#include "core/schema_catalog.hpp"
#include "core/sha256.hpp"
#include "core/version.hpp"

#include <cortexpilot/plugin.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <memory>

namespace cp::cli {

namespace {

// Edits (insert, delete, replace, swap of neighbours) from a to b.
size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::vector<CLI::App*> commands_of(CLI::App& app) {
  return app.get_subcommands([](CLI::App* c) { return !c->get_name().empty(); });
}

// The names close to what was typed: within two edits (one for short words), or starting with it.
std::vector<std::string> close_names(const std::string& typed, CLI::App& app) {
  std::vector<std::pair<size_t, std::string>> found;
  for (auto* c : commands_of(app)) {
    const std::string& n = c->get_name();
    const size_t d = distance(typed, n);
    if (d <= (typed.size() <= 3 ? 1u : 2u) || (typed.size() >= 2 && n.rfind(typed, 0) == 0))
      found.emplace_back(d, n);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

// "cp-host runs" for the runs command, "cp-host" for the top.
std::string path_of(const CLI::App& app) {
  std::string p = app.get_name();
  for (const CLI::App* up = app.get_parent(); up; up = up->get_parent()) p = up->get_name() + " " + p;
  return p;
}

int unknown_command(CLI::App& at, const std::string& typed) {
  std::cerr << "cp-host: '" << typed << "' is not a command of `" << path_of(at) << "`.";
  auto close = close_names(typed, at);
  if (!close.empty()) {
    std::cerr << " Did you mean ";
    for (size_t i = 0; i < close.size() && i < 3; ++i)
      std::cerr << (i == 0                                       ? ""
                    : i + 1 == std::min<size_t>(close.size(), 3) ? " or "
                                                                 : ", ")
                << "'" << close[i] << "'";
    std::cerr << "?";
  }
  std::cerr << "\nRun `cp-host help" << path_of(at).substr(std::string("cp-host").size())
            << "` for the list of commands.\n";
  return kUsage;
}

// An option of `app` or of one of its parents (global options may follow a command).
const CLI::Option* option_named(CLI::App* app, const std::string& name) {
  for (; app; app = app->get_parent())
    if (const CLI::Option* o = app->get_option_no_throw(name)) return o;
  return nullptr;
}

}  // namespace

int check_command_words(CLI::App& app, int argc, char** argv) {
  CLI::App* at = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return -1;  // what follows is not for us to judge
    if (word.size() > 1 && word[0] == '-') {
      if (word.find('=') != std::string::npos) continue;
      const CLI::Option* o = option_named(at, word);
      if (o && o->get_items_expected_min() > 0) ++i;  // its value, whatever it looks like
      continue;
    }
    if (commands_of(*at).empty() || at->get_name() == "help") return -1;
    CLI::App* next = nullptr;
    for (auto* c : commands_of(*at))
      if (c->check_name(word)) next = c;
    if (next) {
      at = next;
      continue;
    }
    // A command that takes a subcommand or arguments of its own: a word that is neither is a mistake only
    // when a subcommand is required.
    if (at->get_require_subcommand_min() > 0) return unknown_command(*at, word);
    return -1;
  }
  return -1;
}

void add_help(CLI::App& app, Runner& run) {
  auto words = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand(
      "help", "Show the help of cp-host or of one of its commands (cp-host help runs show)");
  cmd->add_option("command", *words, "The command, and its subcommands");
  auto man = std::make_shared<bool>(false);
  cmd->add_flag("--man", *man, "Print the manual page of every command, in roff (man -l - reads it)");
  cmd->callback([&app, &run, words, man] {
    run = [&app, words, man]() -> int {
      if (*man) {
        std::cout << man_page(app);
        return kOk;
      }
      CLI::App* at = &app;
      for (const auto& w : *words) {
        CLI::App* next = nullptr;
        for (auto* c : commands_of(*at))
          if (c->check_name(w)) next = c;
        if (!next) return unknown_command(*at, w);
        at = next;
      }
      // Through the formatter: App::help() would show the help of the command chosen on this command line,
      // which is `help` itself.
      std::cout << at->get_formatter()->make_help(at, path_of(*at), CLI::AppFormatMode::Normal);
      return kOk;
    };
  });
}

void add_version(CLI::App& app, Runner& run) {
  auto out = std::make_shared<std::string>("text");
  auto* cmd =
      app.add_subcommand("version", "Print cp-host's version, its plugin ABI and the schemas built into it");
  cmd->add_option("-o,--output", *out, "text (default) or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag_callback(
      "--json", [out] { *out = "json"; }, "The same as --output json");
  cmd->callback([&run, out] {
    run = [out]() -> int {
      // The schema set is named by the digest of every schema's name and text: two builds with the same
      // digest check documents the same way.
      std::string all;
      for (const auto& n : core::schema_names()) {
        all += n + '\n';
        all += core::schema_text(n);
        all += '\n';
      }
      const std::string abi = std::to_string(CP_PLUGIN_ABI_MAJOR) + "." + std::to_string(CP_PLUGIN_ABI_MINOR);
      if (*out == "json") {
        nlohmann::json j{{"version", CP_HOST_VERSION},
                         {"plugin_abi", abi},
                         {"schemas", core::schema_names()},
                         {"schema_set_sha256", core::sha256_hex(all)}};
        std::cout << j.dump(2) << "\n";
      } else {
        std::cout << "cp-host " << CP_HOST_VERSION << "\nplugin ABI " << abi << "\n"
                  << core::schema_names().size() << " schemas, set " << core::sha256_hex(all).substr(0, 12)
                  << "\n";
      }
      return kOk;
    };
  });
}

}  // namespace cp::cli
