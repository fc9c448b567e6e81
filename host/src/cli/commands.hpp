// The subcommands of cp-host. Each registers itself on the CLI11 app and runs when selected; main.cpp
// only wires them together. CLI11 stays out of this header.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}
namespace cp::plugin {
class Registry;
struct PluginInfo;
}  // namespace cp::plugin

namespace cp::cli {

// Exit codes shared by every command (documented in docs/cli.md).
enum Exit : int {
  kOk = 0,
  kInvalid = 1,   // the input was checked and is wrong (validate), or a lookup found nothing
  kUsage = 2,     // the command line or a path is wrong
  kInternal = 3,  // cp-host itself failed
  kFromRun = 11,  // a decision (approve, reject, evidence) was asked from inside a run's process tree
};

// Options shared by several commands.
struct Globals {
  // The plugin search path, folders joined by ':' (plugin/search_path.hpp): the --plugins folders when
  // given, else $CP_HOST_PLUGINS, else the installed plugins and the user's.
  std::filesystem::path plugins_dir;
  std::filesystem::path root = ".";
  // The serve the remote-capable commands talk to instead of the local files (--server, CP_HOST_URL, the
  // user config's server; remote_commands.hpp), and its bearer token. Empty: local.
  std::string server, token;
};

// Each add_* registers a subcommand and stores what to run in `run` when the subcommand is chosen.
using Runner = std::function<int()>;
void add_validate(CLI::App& app, Globals& g, Runner& run);
void add_plugins(CLI::App& app, Globals& g, Runner& run);
void add_probe(CLI::App& app, Globals& g, Runner& run);
void add_schemas(CLI::App& app, Runner& run);
void add_run(CLI::App& app, Globals& g, Runner& run);
void add_runs(CLI::App& app, Globals& g, Runner& run);
// runs contract|reports|artifacts|diff|rollback, under `runs` (runs_detail_command.cpp).
void add_runs_detail(CLI::App& runs, Globals& g, Runner& run);
// runs follow RUN: a run's events as they come, until it ends (runs_follow_command.cpp).
void add_runs_follow(CLI::App& runs, Globals& g, Runner& run);
void add_intake(CLI::App& app, Globals& g, Runner& run);
void add_queue(CLI::App& app, Globals& g, Runner& run);
// queue from-run|replay, under `queue` (queue_rerun_command.cpp).
void add_queue_rerun(CLI::App& queue, Globals& g, Runner& run);
// queue watch [ITEM]: the queue's changes until the item, or everything, has ended (queue_watch_command.cpp).
void add_queue_watch(CLI::App& queue, Globals& g, Runner& run);
void add_locks(CLI::App& app, Globals& g, Runner& run);  // locks list|release: path locks of queued runs
void add_serve(CLI::App& app, Globals& g, Runner& run);
void add_tokens(CLI::App& app, Runner& run);
void add_retention(CLI::App& app, Globals& g, Runner& run);
void add_replay(CLI::App& app, Globals& g, Runner& run);
void add_decisions(CLI::App& app, Globals& g, Runner& run);  // approve, reject, approvals, evidence
void add_compare(CLI::App& app, Globals& g, Runner& run);
void add_workflows(CLI::App& app, Globals& g, Runner& run);
void add_chain(CLI::App& app, Globals& g, Runner& run);
void add_keys(CLI::App& app, Runner& run);  // keys show|rotate|export: the host key that signs seals
void add_db(CLI::App& app, Runner& run);    // db migrate|status: the PostgreSQL store (db_command.cpp)
void add_worktrees(CLI::App& app, Globals& g, Runner& run);  // worktrees list: the kept worktrees
void add_agents(CLI::App& app, Globals& g, Runner& run);     // agents list|status, roles show|preview|apply
void add_reindex(CLI::App& app, Globals& g, Runner& run);    // reindex: serve's run index from the bundles
void add_tower(CLI::App& app, Globals& g, Runner& run);      // tower overview|alerts: the command tower
void add_mcp(CLI::App& app, Globals& g, Runner& run);        // mcp: a Model Context Protocol server on stdio

// task-packs list|show: the kinds of job the planners know (task_packs_command.cpp).
void add_task_packs(CLI::App& app, Globals& g, Runner& run);

// help [COMMAND...] and version [--json] (help_command.cpp).
void add_help(CLI::App& app, Runner& run);
// The manual page (roff) of the whole command tree: `cp-host help --man` (man_page.cpp).
std::string man_page(const CLI::App& app);
void add_version(CLI::App& app, Runner& run);
void add_completion(CLI::App& app, Runner& run);  // completion bash|zsh|fish (completion_command.cpp)
// init [DIR]: a starter project (init_command.cpp).
void add_init(CLI::App& app, Runner& run);
// doctor: what a run needs here, and what to fix (doctor_command.cpp).
void add_doctor(CLI::App& app, Globals& g, Runner& run);

// --output json|text on every command with a --json flag (output_option.cpp): declared once all commands
// are added, and translated in the arguments before they are parsed (`--output json` is `--json`).
void add_output_options(CLI::App& app);
std::vector<std::string> translate_output(CLI::App& app, int argc, char** argv);
// Before parsing: when a command word names no command where one is required, says so with the names close
// to it and returns kUsage; else -1.
int check_command_words(CLI::App& app, int argc, char** argv);

// Loads the plugin folder with <root>/policies/plugins.json applied; false (message printed) when the
// folder or the policy is unusable.
bool load_plugins(const Globals& g, plugin::Registry& reg);

// True for a probe that reaches a remote service (capability "http") and has no config in
// <root>/policies/plugins.json: `probe` and `doctor` skip it unless it is named.
bool probe_needs_configuration(const Globals& g, const plugin::PluginInfo& p);

// The exit code of a run that ended with `verdict_code` (`runs follow`, `queue watch`): that code when its
// bundle verifies — locally with the host key, or as the server checked it with --server — else 1 after
// saying why (runs_follow_command.cpp). A changed bundle never passes for the verdict it claims.
int exit_if_verified(const Globals& g, const std::string& run_id, int verdict_code);

// The plugin search path: the --plugins folders (`given`, each possibly ':'-joined) when any, else
// $CP_HOST_PLUGINS (an empty entry standing for the defaults), else the installed plugins then
// $XDG_DATA_HOME/cp-host/plugins (default_paths.cpp).
std::filesystem::path plugin_search_path(const std::vector<std::string>& given);

}  // namespace cp::cli
