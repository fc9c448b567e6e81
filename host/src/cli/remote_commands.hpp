// The commands that also work against a running `cp-host serve` (`--server URL`, CP_HOST_URL, or the user
// config's server): each asks the REST API for what the local command reads from the files, and prints it
// the same way (read_views.hpp), with the same exit codes.
#pragma once

#include "cli/commands.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

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

// The commands above, as words ("runs list", ...): with --server on the command line any other command is
// refused rather than silently answered from the local files.
const std::vector<std::string>& remote_capable_commands();

struct UserConfig;
// Settles g.server and g.token (server_choice.cpp): --server/--token-file, else CP_HOST_URL/CP_HOST_TOKEN,
// else the user config. -1 when the command may go on, else the exit code after saying what is wrong.
int choose_server(CLI::App& app, const std::string& server_option, const std::string& token_file,
                  const UserConfig& config, Globals& g);

}  // namespace cp::cli
