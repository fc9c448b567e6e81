// The commands that also work against a running `cp-host serve` (`--server URL`, CP_HOST_URL, or the user
// config's server): each asks the REST API for what the local command reads from the files, and prints it
// the same way (read_views.hpp), with the same exit codes.
#pragma once

#include "cli/commands.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cp::cli {

int remote_runs_list(const Globals& g, const store::RunQuery& q, size_t limit, bool as_json);
int remote_runs_show(const Globals& g, const std::string& run_id, bool as_json);
int remote_runs_events(const Globals& g, const std::string& run_id, const std::string& type, bool as_json);
int remote_runs_follow(const Globals& g, const std::string& run_id, bool as_json, int interval_ms);
// GET /api/queue as JSON, or null with `code` set after saying why.
std::optional<nlohmann::json> remote_queue_snapshot(const Globals& g, int& code);
int remote_queue_list(const Globals& g, const std::string& state, bool active_only, bool as_json);
int remote_queue_cancel(const Globals& g, const std::string& item, const std::string& reason);
// `body` is what POST /api/runs takes: {contract, repo?, priority?, depends_on?, run_after?, ...}.
int remote_queue_submit(const Globals& g, const nlohmann::json& body, bool as_json);
int remote_approvals_list(const Globals& g, bool as_json);
// `action`: approve, reject or god-mode-approve (an admin token's).
int remote_decide(const Globals& g, const std::string& run_id, const std::string& action,
                  const std::string& reason, bool as_json);

// GET `target` on the chosen server: its JSON answer, or nullopt with `code` set after saying why (`what`
// names it). With `for_text` every string in it is made terminal-safe (read_views.hpp), for a printer.
std::optional<nlohmann::json> remote_get(const Globals& g, const std::string& target, const std::string& what,
                                         bool for_text, int& code);
// A read command whose local view is what GET `target` answers (the same control/ view built on the
// server): the answer as JSON with `as_json`, else through `human`, the local command's own printer.
// `what` names it in errors ("the contract of run X"). Exit codes as the local command's: 0, 1 not found
// or refused, 2 a token problem, 3 the server failed.
int remote_view(const Globals& g, const std::string& target, const std::string& what, bool as_json,
                const std::function<void(const nlohmann::json&)>& human);
// `runs diff --patch`: GET `target` and print the body as print_patch (read_views.hpp) does.
int remote_text(const Globals& g, const std::string& target, const std::string& what);
// `runs verify RUN`: the server's check of the bundle (POST .../verify, an operator's; with a viewer's
// token the run detail's verification, which the server keeps for the bundle's current bytes). `human`
// prints it as the local command does; 0 intact, 1 not.
int remote_runs_verify(const Globals& g, const std::string& run_id, bool as_json,
                       const std::function<void(const nlohmann::json&)>& human);
// "/api/runs/ID" with ID percent-encoded.
std::string remote_run_path(const std::string& run_id);

// The commands above, as words ("runs list", ...): with --server on the command line any other command is
// refused rather than silently answered from the local files.
const std::vector<std::string>& remote_capable_commands();

// The token in `file` (server_choice.cpp): its first line, trimmed; a warning when others may read it.
// nullopt after saying on stderr why it cannot be read (missing, not a file, over 4 KiB).
std::optional<std::string> read_token(const std::string& file);

struct UserConfig;
// Settles g.server and g.token (server_choice.cpp): --server, else CP_HOST_URL, else the user config; the
// token from --token-file, else CP_HOST_TOKEN, else the config's token file. -1 when the command may go on,
// else the exit code after saying what is wrong.
int choose_server(CLI::App& app, const std::string& server_option, const std::string& token_file,
                  const UserConfig& config, Globals& g);

}  // namespace cp::cli
