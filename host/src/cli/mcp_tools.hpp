// What `cp-host mcp`'s tools share (docs/mcp.md): the server's options and state, a tool's shape and answer,
// and the helpers every tool uses on what the client sent. Everything the client sends is hostile: the
// arguments have passed the tool's own input schema before a tool runs, run ids are checked before they
// name a folder, and paths stay inside the project root. The read tools are in mcp_read_tools.cpp, the
// write tools and their token checks in mcp_write_tools.cpp, the protocol that calls them in
// mcp_protocol.cpp.
#pragma once

#include "cli/commands.hpp"
#include "plugin/registry.hpp"
#include "serve/auth.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cp::cli {

struct McpOptions {
  bool allow_writes = false;
  std::string token_file, tokens_file;
  std::string repo = ".";  // the repository a submission runs on when it names none
  std::vector<std::string> allow_repos;
};

// What the server knows while it serves.
struct McpContext {
  const Globals& g;
  McpOptions opts;
  std::filesystem::path root_real;       // the root with every link resolved: what paths must stay under
  std::string token;                     // the bearer token writes are checked with ("" when none was given)
  serve::Role role = serve::Role::none;  // the token's role at start, which decides what is listed
  std::unique_ptr<plugin::Registry> registry;
  bool registry_tried = false;
};

// A tool's answer: a JSON object, or why the tool failed (with a JSON object saying more, when there is one).
struct McpAnswer {
  nlohmann::json value;
  std::string error;
};

inline McpAnswer mcp_ok(nlohmann::json v) {
  return {std::move(v), ""};
}
inline McpAnswer mcp_fail(std::string why, nlohmann::json more = nlohmann::json()) {
  return {std::move(more), std::move(why)};
}

struct McpTool {
  const char* name;
  const char* description;
  nlohmann::json input_schema;
  serve::Role needs;  // Role::none: a read, always served
  McpAnswer (*call)(McpContext&, const nlohmann::json& args);
};

// The tools in the order tools/list shows them: the reads (mcp_read_tools.cpp), then the writes
// (mcp_write_tools.cpp).
std::vector<McpTool> mcp_read_tools();
std::vector<McpTool> mcp_write_tools();

// The holder of the server's token now, when it may call the write tool `tool` (mcp_write_tools.cpp);
// empty with why when not. tools/call asks before a write tool's arguments are read.
std::optional<serve::Principal> mcp_writer(const McpContext& c, const char* tool, serve::Role needs,
                                           std::string& why);

// ---- arguments: the schema has checked the types, these never throw on what it let through ------------

std::string mcp_text(const nlohmann::json& a, const char* key);
int64_t mcp_number(const nlohmann::json& a, const char* key, int64_t fallback);
// The text of a message, cut to `n` characters: what a client sent is echoed only that far.
std::string mcp_cut(const std::string& s, size_t n = 120);

// ---- input schemas ------------------------------------------------------------------------------------

nlohmann::json mcp_schema(nlohmann::json properties, std::vector<std::string> required);
nlohmann::json mcp_string(const char* description, size_t max_length);
nlohmann::json mcp_integer(const char* description, int64_t minimum, int64_t maximum);
nlohmann::json mcp_run_id_schema();
// `contract` (inline) and `path` (a file under the root): validate_contract's and submit_contract's.
nlohmann::json mcp_contract_properties();

// ---- paths, contracts and plugins ---------------------------------------------------------------------

// The regular file `rel` names under the root, or nullopt with why not: absolute paths, '..' and links that
// lead out of the root are refused, so a client can make cp-host read nothing outside the project.
std::optional<std::filesystem::path> mcp_file_in_root(const McpContext& c, const std::string& rel,
                                                      std::string& why);
// Exactly one of `contract` and `path`; false with why otherwise.
bool mcp_one_contract(const nlohmann::json& a, std::string& why);
// The loaded plugins (validation checks references to them), loaded once; null when they cannot be (the
// reason is on stderr).
const plugin::Registry* mcp_registry(McpContext& c);

}  // namespace cp::cli
