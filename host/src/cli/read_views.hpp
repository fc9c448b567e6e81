// How the read commands print what they found, shared by the local commands and their remote forms
// (remote_commands.cpp), so that `--server URL` prints exactly what the local files would.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace cp::cli {

// `runs list`: the rows ({run_id, status, verdict?, runner, created_at, ...}), or "no runs <where>".
void print_runs_table(const nlohmann::json& rows, const std::string& where);

// `runs show` in text: the manifest, the bundle's place, and the verification ({state, ok, problems,
// key_id?}, as `runs verify --json` gives it).
void print_run_detail(const std::string& run_id, const nlohmann::json& manifest, const std::string& bundle,
                      const nlohmann::json& verification);

// One event of `runs events`/`runs follow`: the line as written (`raw_line`) with --json, else a table row.
// False when the line is not an event (said on stderr).
bool print_event(const std::string& raw_line, bool as_json, const std::string& run_id);

// `queue list` in text, from {items, problems}.
void print_queue_items(const nlohmann::json& list);

// `approvals list` in text, from the pending runs.
void print_approvals(const nlohmann::json& pending);

// `runs verify` in text, from the check as `runs verify --json` gives it ({run_id, ok, state, status,
// verdict?, events, key_id?, problems}): "ok: ...", "live: ..." or one "TAMPERED: ..." line per problem.
void print_verification(const nlohmann::json& check);

// `runs contract|reports|artifacts|diff` in text, from the views GET /api/runs/{id}/contract|reports|
// artifacts|diff serve (control/run_views.hpp, control/patch_view.hpp).
void print_contract_view(const nlohmann::json& view);
void print_reports_view(const nlohmann::json& view);
void print_artifacts_view(const nlohmann::json& view);
void print_diff_view(const nlohmann::json& view);

// A run's patch as recorded (`runs diff --patch`): the bytes as they are into a pipe or a file (for `git
// apply`), but to a terminal with every control character other than a newline or a tab shown as '?'.
void print_patch(const std::string& patch);

// `s` with every control character shown as '?': text from a bundle or a server must not drive the
// terminal (escape sequences, carriage returns).
std::string terminal_safe(std::string s);
// `j` with terminal_safe applied to every string and key in it, for the printers that take a whole answer.
nlohmann::json terminal_safe_json(nlohmann::json j);

}  // namespace cp::cli
