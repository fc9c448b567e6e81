// `cp-host mcp`'s protocol (mcp_protocol.hpp): JSON-RPC 2.0 messages checked and answered, MCP's
// initialize, tools/list and tools/call over the tool table, and the stdio framing. Everything the client
// sends is hostile: lines are bounded, ids and params are checked, arguments must pass the tool's own
// schema, a request that throws is answered with an error while the server keeps serving, and what runs
// wrote is redacted as the API redacts it for viewers.
#include "cli/mcp_protocol.hpp"

#include "core/json_depth.hpp"
#include "core/json_schema.hpp"
#include "core/version.hpp"
#include "serve/secret_redaction.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <exception>
#include <iostream>
#include <vector>

namespace cp::cli {

using nlohmann::json;

namespace {

// An answer whose text is longer is refused: the client should ask for less.
constexpr size_t kMcpMaxAnswer = size_t{4} << 20;
// The protocol versions spoken, newest first: the first is the answer to a client asking for another.
constexpr std::array<const char*, 3> kMcpProtocols{"2025-06-18", "2025-03-26", "2024-11-05"};

// The tools and their compiled input schemas, built once.
struct McpToolSet {
  std::vector<McpTool> tools;
  std::vector<core::JsonSchema> schemas;
};

const McpToolSet& mcp_tools() {
  static const McpToolSet set = [] {
    McpToolSet s;
    s.tools = mcp_read_tools();
    for (auto& t : mcp_write_tools()) s.tools.push_back(std::move(t));
    for (const auto& t : s.tools) s.schemas.push_back(core::JsonSchema::compile(t.input_schema));
    return s;
  }();
  return set;
}

// Whether tools/list shows `t`: reads always, writes with --allow-writes and a token that may use them.
bool mcp_listed(const McpContext& c, const McpTool& t) {
  return t.needs == serve::Role::none || (c.opts.allow_writes && c.role >= t.needs);
}

// ---- JSON-RPC -----------------------------------------------------------------------------------------

// A request's answer: a result, or an error code and message.
struct McpReply {
  json result;
  int code = 0;
  std::string message;
};

McpReply mcp_error_reply(int code, std::string message) {
  return {json(), code, std::move(message)};
}

McpReply mcp_initialize(const json& params) {
  auto it = params.find("protocolVersion");
  if (it == params.end() || !it->is_string())
    return mcp_error_reply(kMcpBadParams, "initialize needs params.protocolVersion (a string)");
  const std::string asked = it->get<std::string>();
  std::string chosen = kMcpProtocols.front();
  for (const char* v : kMcpProtocols)
    if (asked == v) chosen = v;
  return {{{"protocolVersion", chosen},
           {"capabilities", {{"tools", {{"listChanged", false}}}}},
           {"serverInfo",
            {{"name", "cp-host"}, {"title", "cp-host control plane"}, {"version", CP_HOST_VERSION}}},
           {"instructions",
            "cp-host runs task contracts for coding agents into sealed, verifiable run bundles. Read runs, "
            "their events and diffs, the queue, approvals and workflows; check contracts with "
            "validate_contract. Write tools are listed only when the server allows writes."}},
          0,
          ""};
}

McpReply mcp_tools_list(const McpContext& c) {
  json list = json::array();
  for (const auto& t : mcp_tools().tools) {
    if (!mcp_listed(c, t)) continue;
    const bool read = t.needs == serve::Role::none;
    list.push_back({{"name", t.name},
                    {"description", t.description},
                    {"inputSchema", t.input_schema},
                    {"annotations",
                     {{"readOnlyHint", read},
                      {"destructiveHint",
                       std::string(t.name) == "reject_run" || std::string(t.name) == "cancel_queue_item"},
                      {"openWorldHint", false}}}});
  }
  return {{{"tools", list}}, 0, ""};
}

json mcp_text_content(std::string text) {
  return {{"type", "text"}, {"text", std::move(text)}};
}

// A tool's answer as MCP carries it: the JSON as text, and as structured content when it is an object.
json mcp_tool_result(McpAnswer a) {
  serve::redact_json_strings(a.value);
  if (!a.error.empty()) serve::redact_secrets(a.error);
  std::string text = a.error.empty() ? a.value.dump(-1, ' ', false, json::error_handler_t::replace) : a.error;
  if (!a.error.empty() && a.value.is_object())
    text += "\n" + a.value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMcpMaxAnswer)
    return {
        {"content", json::array({mcp_text_content("the answer is " + std::to_string(text.size()) +
                                                  " bytes, over the " + std::to_string(kMcpMaxAnswer >> 20) +
                                                  " MiB this server sends; ask for less (limit)")})},
        {"isError", true}};
  json out{{"content", json::array({mcp_text_content(std::move(text))})}, {"isError", !a.error.empty()}};
  if (a.value.is_object()) out["structuredContent"] = std::move(a.value);
  return out;
}

McpReply mcp_tools_call(McpContext& c, const json& params) {
  auto name_it = params.find("name");
  if (name_it == params.end() || !name_it->is_string())
    return mcp_error_reply(kMcpBadParams, "tools/call needs params.name (a string)");
  const std::string name = name_it->get<std::string>();
  json args = params.contains("arguments") ? params["arguments"] : json::object();
  if (args.is_null()) args = json::object();
  if (!args.is_object()) return mcp_error_reply(kMcpBadParams, "params.arguments must be a JSON object");
  const McpToolSet& set = mcp_tools();
  for (size_t i = 0; i < set.tools.size(); ++i) {
    const McpTool& t = set.tools[i];
    if (name != t.name) continue;
    // A write tool the server does not offer is refused before its arguments are read, naming what enables
    // it.
    std::string why;
    if (t.needs != serve::Role::none && !mcp_writer(c, t.name, t.needs, why))
      return {mcp_tool_result(mcp_fail(why)), 0, ""};
    auto violations = set.schemas[i].validate(args);
    if (!violations.empty()) {
      const auto& v = violations.front();
      return mcp_error_reply(kMcpBadParams, "invalid arguments for " + name + ": " +
                                                (v.pointer.empty() ? "/" : v.pointer) + ": " + v.message +
                                                (v.expected.empty() ? "" : " (expected " + v.expected + ")"));
    }
    try {
      return {mcp_tool_result(t.call(c, args)), 0, ""};
    } catch (const std::exception& e) {
      return {mcp_tool_result(mcp_fail(std::string(name) + " failed: " + e.what())), 0, ""};
    }
  }
  return mcp_error_reply(kMcpBadParams, "unknown tool: " + mcp_cut(name));
}

McpReply mcp_dispatch(McpContext& c, const std::string& method, const json& params) {
  if (method == "initialize") return mcp_initialize(params);
  if (method == "ping") return {json::object(), 0, ""};
  if (method == "tools/list") return mcp_tools_list(c);
  if (method == "tools/call") return mcp_tools_call(c, params);
  return mcp_error_reply(kMcpNoMethod, "method not found: " + mcp_cut(method));
}

}  // namespace

json mcp_error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

std::optional<json> mcp_respond(McpContext& c, const std::string& line) {
  if (!core::json_depth_ok(line))
    return mcp_error(nullptr, kMcpParseError,
                     "parse error: nested deeper than " + std::to_string(core::kMaxJsonDepth) + " levels");
  json msg = json::parse(line, nullptr, false);
  if (msg.is_discarded()) return mcp_error(nullptr, kMcpParseError, "parse error: the line is not JSON");
  if (!msg.is_object())
    return mcp_error(nullptr, kMcpInvalidRequest,
                     msg.is_array() ? "batches are not supported: send one message per line"
                                    : "a message must be a JSON object");
  const bool has_id = msg.contains("id");
  const json id = has_id ? msg["id"] : json();
  const bool id_ok = !has_id || id.is_string() || id.is_number_integer();
  auto method_it = msg.find("method");
  if (method_it == msg.end()) {
    if (msg.contains("result") || msg.contains("error")) return std::nullopt;
    return mcp_error(id_ok ? id : json(), kMcpInvalidRequest, "invalid request: no method");
  }
  if (!id_ok)
    return mcp_error(nullptr, kMcpInvalidRequest, "invalid request: id must be a string or an integer");
  const bool well_formed = mcp_text(msg, "jsonrpc") == "2.0" && method_it->is_string();
  if (!well_formed)
    return has_id ? std::optional<json>(
                        mcp_error(id, kMcpInvalidRequest,
                                  "invalid request: needs \"jsonrpc\": \"2.0\" and a string method"))
                  : std::nullopt;
  const json params = msg.contains("params") ? msg["params"] : json::object();
  // A notification (notifications/initialized, notifications/cancelled, ...) is never answered.
  if (!has_id) return std::nullopt;
  if (!params.is_object()) return mcp_error(id, kMcpBadParams, "params must be a JSON object");
  McpReply r;
  try {
    r = mcp_dispatch(c, method_it->get<std::string>(), params);
  } catch (const std::exception& e) {
    std::cerr << "cp-host mcp: internal error: " << e.what() << "\n";
    r = mcp_error_reply(kMcpInternalError, std::string("internal error: ") + e.what());
  }
  if (r.code != 0) return mcp_error(id, r.code, r.message);
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(r.result)}};
}

void mcp_compile_tools() {
  (void)mcp_tools();
}

// ---- stdio --------------------------------------------------------------------------------------------

McpLineReader::Got McpLineReader::next(std::string& line) {
  for (;;) {
    if (auto nl = buf_.find('\n', scanned_); nl != std::string::npos) {
      const bool dropped = dropping_;
      line.assign(buf_, 0, nl);
      buf_.erase(0, nl + 1);
      scanned_ = 0;
      dropping_ = false;
      if (dropped || line.size() > kMcpMaxLine) return Got::too_long;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return Got::line;
    }
    if (buf_.size() > kMcpMaxLine) {
      dropping_ = true;
      buf_.clear();
    }
    scanned_ = buf_.size();
    if (!fill()) {
      if (buf_.empty() || dropping_) return Got::eof;
      line.swap(buf_);
      buf_.clear();
      scanned_ = 0;
      return Got::line;
    }
  }
}

bool McpLineReader::fill() {
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

bool mcp_send(int fd, const json& msg) {
  const std::string text = msg.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace cp::cli
