// `cp-host mcp`'s protocol (docs/mcp.md): JSON-RPC 2.0, one message per line over stdio, MCP's initialize,
// ping, tools/list and tools/call, and the errors the protocol answers. mcp_command.cpp runs the loop that
// reads lines, answers them with mcp_respond and sends the answers.
#pragma once

#include "cli/mcp_tools.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>

namespace cp::cli {

// A line (one message) longer than this is dropped unread and answered with a parse error.
constexpr size_t kMcpMaxLine = size_t{4} << 20;

// JSON-RPC 2.0 error codes.
enum McpCode : int {
  kMcpParseError = -32700,
  kMcpInvalidRequest = -32600,
  kMcpNoMethod = -32601,
  kMcpBadParams = -32602,
  kMcpInternalError = -32603,
};

// A JSON-RPC error message answering `id` (null when the request's id is unknown).
nlohmann::json mcp_error(const nlohmann::json& id, int code, const std::string& message);

// The answer to one line from the client; nullopt when there is nothing to answer (a notification, or a
// response to a request this server never sends).
std::optional<nlohmann::json> mcp_respond(McpContext& c, const std::string& line);

// Builds the tools and compiles their input schemas, which otherwise happens in the first request.
void mcp_compile_tools();

// Lines of at most kMcpMaxLine bytes from a file descriptor. A longer line is dropped as it arrives (never
// held whole) and reported, so one huge message costs bounded memory and the next is read as usual.
class McpLineReader {
 public:
  enum class Got { line, too_long, eof };
  explicit McpLineReader(int fd) : fd_(fd) {}

  Got next(std::string& line);

 private:
  bool fill();

  int fd_;
  std::string buf_;
  size_t scanned_ = 0;  // bytes of buf_ known to hold no newline
  bool dropping_ = false;
};

// One message, one line; false when the client is gone.
bool mcp_send(int fd, const nlohmann::json& msg);

}  // namespace cp::cli
