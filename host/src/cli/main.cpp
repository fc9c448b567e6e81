// cp-host: the command line. Parses arguments, dispatches to a subcommand, maps failures to exit codes.
#include "cli/colour.hpp"
#include "cli/commands.hpp"
#include "cli/project_root.hpp"
#include "cli/remote_commands.hpp"
#include "cli/user_config.hpp"
#include "control/workflow_cases.hpp"
#include "core/version.hpp"
#include "log/log_lanes.hpp"
#include "log/logger.hpp"
#include "queue/locks_on_seal.hpp"
#include "store/host_key.hpp"

#include <cortexpilot/plugin.h>
#include <CLI/CLI.hpp>

#include <string>

#include <cstring>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 1) return cp::cli::kUsage;  // exec'd with an empty argv: nothing names the program
  using namespace cp::cli;
  // The reactions to a sealed run are wired here, at the top, so the layers that seal never call upward.
  cp::control::record_workflow_cases_on_seal();
  cp::queue::release_path_locks_on_seal();
  CLI::App app{
      "cp-host — a governed control plane for AI coding agents.\n"
      "Runs task contracts through runner plugins, judges them with gate plugins, and leaves an "
      "auditable run bundle.",
      "cp-host"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  app.set_version_flag("--version", std::string("cp-host ") + CP_HOST_VERSION + " (plugin ABI " +
                                        std::to_string(CP_PLUGIN_ABI_MAJOR) + "." +
                                        std::to_string(CP_PLUGIN_ABI_MINOR) + ")");
  Globals g;
  std::string log_level = "warn";
  std::vector<std::string> plugin_folders;
  app.add_option("--plugins", plugin_folders,
                 "Folder of plugin .so files; repeat it (or join folders with ':') for a search path where "
                 "the first plugin id wins (default: $CP_HOST_PLUGINS, else the installed plugins, then "
                 "$XDG_DATA_HOME/cp-host/plugins)")
      ->expected(1)
      ->take_all();
  bool root_given = false;
  app.add_option(
         "--root", g.root,
         "Project root holding contracts/, packs/, policies/ (default: $CP_HOST_ROOT, else the current "
         "folder when it holds cortexpilot.toml, cortexpilot.json, or packs/ and policies/, else the "
         "nearest folder above with a project file you own, else the current folder)")
      ->each([&](const std::string&) { root_given = true; });
  app.add_option("--log-level", log_level, "debug|info|warn|error|off (default: warn)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));
  std::string key_dir;
  app.add_option("--key-dir", key_dir,
                 "Folder of the host key that signs run seals (default: $CP_HOST_KEY_DIR, else "
                 "~/.config/cp-host/keys); keep it outside the root, where no run can read it");
  std::string server_option, token_file;
  app.add_option("--server", server_option,
                 "A running cp-host serve (http[s]://HOST:PORT) that runs list|show|events|follow, queue "
                 "list|submit|cancel, approvals list, approve and reject talk to instead of the local files "
                 "(default: $CP_HOST_URL, else the user config's server)");
  app.add_option(
      "--token-file", token_file,
      "A file holding the bearer token for --server (default: $CP_HOST_TOKEN itself, else the user "
      "config's token_file)");
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "Console log lines: text (default) or json (log_event.v2 envelopes). run, serve, queue and "
                 "retention also write JSON log lanes under <root>/.runtime-cache/logs/")
      ->check(CLI::IsMember({"text", "json"}));

  Runner run;
  add_validate(app, g, run);
  add_plugins(app, g, run);
  add_probe(app, g, run);
  add_schemas(app, run);
  add_run(app, g, run);
  add_runs(app, g, run);
  add_intake(app, g, run);
  add_queue(app, g, run);
  add_locks(app, g, run);
  add_serve(app, g, run);
  add_tokens(app, run);
  add_retention(app, g, run);
  add_replay(app, g, run);
  add_decisions(app, g, run);
  add_compare(app, g, run);
  add_workflows(app, g, run);
  add_chain(app, g, run);
  add_keys(app, run);
  add_db(app, run);
  add_worktrees(app, g, run);
  add_agents(app, g, run);
  add_tower(app, g, run);
  add_mcp(app, g, run);
  add_reindex(app, g, run);
  add_task_packs(app, g, run);
  add_help(app, run);
  add_version(app, run);
  add_completion(app, run);
  add_init(app, run);
  add_doctor(app, g, run);

  if (argc == 1) {  // no command: what there is to choose from
    std::cout << app.help();
    return kUsage;
  }

  add_output_options(app);
  if (int bad = check_command_words(app, argc, argv); bad >= 0) return bad;

  std::vector<std::string> words;
  std::vector<char*> word_ptrs;
  try {
    words = translate_output(app, argc, argv);
    for (auto& w : words) word_ptrs.push_back(w.data());
    app.parse(static_cast<int>(word_ptrs.size()), word_ptrs.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }
  // A connection string on the command line may carry a password, and /proc/<pid>/cmdline is readable by
  // every process of the machine: once parsed, the value is overwritten where the kernel reads it from.
  for (int i = 1; i < argc; ++i) {
    char* value = nullptr;
    if (std::strcmp(argv[i], "--store") == 0 && i + 1 < argc)
      value = argv[i + 1];
    else if (std::strncmp(argv[i], "--store=", 8) == 0)
      value = argv[i] + 8;
    if (value)
      for (char* c = value; *c; ++c) *c = '*';
  }
  g.plugins_dir = plugin_search_path(plugin_folders);
  {
    std::error_code ec;
    const std::filesystem::path cwd = std::filesystem::current_path(ec);
    ProjectRoot found =
        find_project_root(root_given ? &g.root : nullptr, ec ? std::filesystem::path(".") : cwd);
    g.root = found.path;
    if (!found.warning.empty()) std::cerr << found.warning << "\n";
    // Only the commands that never read a root may go on from a folder that may not choose it.
    if (!found.refusal.empty() && !app.got_subcommand("help") && !app.got_subcommand("version") &&
        !app.got_subcommand("completion")) {
      std::cerr << found.refusal << "\n";
      return kUsage;
    }
    // A command that executes something says so when the project it works in was found above the current
    // folder: which policies and plugins it obeys should never be a surprise.
    const bool found_above = !root_given && found.chosen_by != "CP_HOST_ROOT" && found.path != ".";
    if (found_above)
      for (const char* executes :
           {"run", "probe", "serve", "replay", "chain", "intake", "retention", "queue"})
        if (app.got_subcommand(executes)) {
          std::cerr << "cp-host: project root " << found.path.string() << " (chosen by " << found.chosen_by
                    << ")\n";
          break;
        }
    remember_project_root(std::move(found));
  }
  if (!key_dir.empty()) cp::store::set_key_dir(key_dir);
  {
    const UserConfig config = load_user_config();
    if (!config.error.empty()) std::cerr << "cp-host: " << config.error << "\n";
    set_colour_preference(config.colour);
    if (int bad = choose_server(app, server_option, token_file, config, g); bad >= 0) return bad;
  }
  cp::log::set_level(log_level == "debug"   ? cp::log::Level::debug
                     : log_level == "info"  ? cp::log::Level::info
                     : log_level == "warn"  ? cp::log::Level::warn
                     : log_level == "error" ? cp::log::Level::error
                                            : cp::log::Level::off);
  cp::log::set_console_format(log_format == "json" ? cp::log::ConsoleFormat::json
                                                   : cp::log::ConsoleFormat::text);
  for (const char* with_lanes : {"run", "serve", "queue", "retention", "replay", "approve", "reject",
                                 "approvals", "evidence", "chain", "locks", "roles"})
    if (app.got_subcommand(with_lanes)) {
      try {
        cp::log::open_lanes(std::filesystem::absolute(g.root));
      } catch (const std::exception& e) {
        std::cerr << "cp-host: cannot open the log lanes: " << e.what() << "\n";
      }
    }
  try {
    return run ? run() : kUsage;
  } catch (const std::exception& e) {
    std::cerr << "cp-host: internal error: " << e.what() << "\n";
    return kInternal;
  }
}
