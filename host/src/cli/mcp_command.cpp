// `cp-host mcp`: a Model Context Protocol server on stdin/stdout, so that an agent's host (Codex, Claude
// Code, ...) can read runs, the queue, approvals and workflows, check contracts and, when allowed, submit,
// cancel and decide (docs/mcp.md). This file holds the command, the token check at start and the loop; the
// protocol is in mcp_protocol.cpp, the tools in mcp_read_tools.cpp and mcp_write_tools.cpp. Nothing but
// messages goes to stdout: fd 1 is pointed at stderr while serving, so a stray print from any library lands
// in the log, never in the protocol. Writes need --allow-writes and a token whose role serve would accept
// for the same route (serve/auth.hpp).
#include "cli/commands.hpp"
#include "cli/mcp_protocol.hpp"
#include "cli/mcp_tools.hpp"
#include "cli/remote_commands.hpp"
#include "log/log_lanes.hpp"
#include "serve/auth.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// With --allow-writes: the token (--token-file, else CP_HOST_TOKEN) must be one of --tokens. Its role at
// start decides which write tools are listed. -1 when serving may start, else the exit code.
int mcp_settle_writes(McpContext& c) {
  if (const char* env = std::getenv("CP_HOST_TOKEN"); env && *env && c.opts.token_file.empty()) c.token = env;
  // Nothing this process starts (plugin workers, probes) needs the token.
  ::unsetenv("CP_HOST_TOKEN");
  if (!c.opts.token_file.empty()) {
    auto token = read_token(c.opts.token_file);
    if (!token) return kUsage;
    c.token = *token;
  }
  if (!c.opts.allow_writes) return -1;
  if (c.opts.tokens_file.empty() || c.token.empty()) {
    std::cerr
        << "cp-host mcp: --allow-writes needs --tokens FILE (made with `cp-host tokens add`) and a token "
           "from it in CP_HOST_TOKEN or --token-file\n";
    return kUsage;
  }
  try {
    auto who = serve::TokenStore::load(c.opts.tokens_file).authenticate(c.token);
    if (!who) {
      std::cerr << "cp-host mcp: the token given is not in " << c.opts.tokens_file << "\n";
      return kUsage;
    }
    c.role = who->role;
    std::cerr << "cp-host mcp: writes allowed as '" << who->token_id << "' (" << serve::role_name(who->role)
              << ")\n";
  } catch (const std::exception& e) {
    std::cerr << "cp-host mcp: " << e.what() << "\n";
    return kUsage;
  }
  try {
    cp::log::open_lanes(fs::absolute(c.g.root));  // decisions and submissions leave their log lines
  } catch (const std::exception& e) {
    std::cerr << "cp-host mcp: cannot open the log lanes: " << e.what() << "\n";
  }
  return -1;
}

int mcp_serve(const Globals& g, McpOptions opts) {
  McpContext c{g, std::move(opts), {}, {}, serve::Role::none, nullptr, false};
  std::error_code ec;
  c.root_real = fs::canonical(g.root, ec);
  if (ec || !fs::is_directory(c.root_real)) {
    std::cerr << "cp-host mcp: the project root " << g.root.string() << " is not a folder\n";
    return kUsage;
  }
  if (int bad = mcp_settle_writes(c); bad >= 0) return bad;
  mcp_compile_tools();  // the schemas compile now, not in the first request
  // The protocol keeps stdout for itself: fd 1 becomes stderr, so nothing else can write into the stream.
  std::cout.flush();
  const int out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::cerr << "cp-host mcp: cannot take stdout: " << std::strerror(errno) << "\n";
    return kInternal;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not a killed server
  std::cerr << "cp-host mcp: serving MCP on stdin/stdout (root " << c.root_real.string() << ", writes "
            << (c.opts.allow_writes ? "allowed" : "off") << ")\n";
  McpLineReader in(STDIN_FILENO);
  std::string line;
  for (;;) {
    const auto got = in.next(line);
    if (got == McpLineReader::Got::eof) break;
    std::optional<json> reply;
    if (got == McpLineReader::Got::too_long)
      reply = mcp_error(nullptr, kMcpParseError,
                        "a message over " + std::to_string(kMcpMaxLine >> 20) + " MiB was dropped unread");
    else if (!line.empty())
      reply = mcp_respond(c, line);
    if (reply && !mcp_send(out, *reply)) break;
  }
  ::close(out);
  return kOk;
}

}  // namespace

void add_mcp(CLI::App& app, Globals& g, Runner& run) {
  auto o = std::make_shared<McpOptions>();
  auto* cmd = app.add_subcommand(
      "mcp",
      "Serve the Model Context Protocol on stdin/stdout (JSON-RPC, one message per line) for agents such as "
      "Codex and Claude Code: read runs, events, diffs, the queue, approvals and workflows, validate "
      "contracts; with --allow-writes and an operator or admin token, submit, cancel, approve and reject. "
      "Logs go to stderr. See docs/mcp.md");
  cmd->add_flag("--allow-writes", o->allow_writes,
                "Offer submit_contract, cancel_queue_item, approve_run and reject_run (needs --tokens and an "
                "operator or admin token)");
  cmd->add_option("--token-file", o->token_file,
                  "A file holding the token writes are checked with (default: $CP_HOST_TOKEN)");
  cmd->add_option("--tokens", o->tokens_file,
                  "The token file (`cp-host tokens add`, as serve --tokens) the token must be in");
  cmd->add_option("--repo", o->repo, "The repository a submission runs on when it names none (default: .)");
  cmd->add_option("--allow-repo", o->allow_repos,
                  "A repository (or a folder of them) a submission may name (repeatable)");
  cmd->callback([&app, &g, &run, o] {
    // `cp-host --token-file F mcp` gives the option before the command word: the global option holds it.
    if (o->token_file.empty())
      if (const CLI::Option* global = app.get_option_no_throw("--token-file"); global && global->count() > 0)
        o->token_file = global->as<std::string>();
    run = [&g, o] { return mcp_serve(g, *o); };
  });
}

}  // namespace cp::cli
