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

}  // namespace cp::cli
