// Which serve the remote-capable commands talk to, and with which token: --server and --token-file, else
// CP_HOST_URL and CP_HOST_TOKEN, else the user config. A --server given on the command line to a command that
// only reads the local files is refused (it would otherwise answer silently from the wrong place); one that
// comes from the environment or the config leaves such a command local.
#include "cli/read_views.hpp"
#include "cli/remote_client.hpp"
#include "cli/remote_commands.hpp"
#include "cli/user_config.hpp"

#include <CLI/CLI.hpp>

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>

namespace cp::cli {

namespace {

// "runs list", "approve": the command words chosen on this command line.
std::string chosen_command(CLI::App& app) {
  std::string words;
  for (CLI::App* at = &app;;) {
    auto chosen = at->get_subcommands();
    if (chosen.empty()) break;
    at = chosen.front();
    words += (words.empty() ? "" : " ") + at->get_name();
  }
  return words;
}

// Whether `host` is this machine's loopback: the only place a token may travel in clear.
bool loopback(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace

std::optional<std::string> read_token(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::cerr << "cp-host: token file " << file << " does not exist or is not a file\n";
    return std::nullopt;
  }
  if (st.st_size > 4096) {
    std::cerr << "cp-host: token file " << file << " is over 4 KiB; it should hold one token\n";
    return std::nullopt;
  }
  if (st.st_mode & (S_IRGRP | S_IROTH))
    std::cerr << "cp-host: warning: token file " << file << " is readable by others (chmod 600 " << file
              << ")\n";
  std::ifstream in(file);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
  return token;
}

int choose_server(CLI::App& app, const std::string& server_option, const std::string& token_file,
                  const UserConfig& config, Globals& g) {
  std::string server = server_option;
  if (server.empty())
    if (const char* env = std::getenv("CP_HOST_URL"); env && *env) server = env;
  if (server.empty()) server = config.server;
  if (server.empty()) return -1;
  const std::string command = chosen_command(app);
  const auto& capable = remote_capable_commands();
  if (std::find(capable.begin(), capable.end(), command) == capable.end()) {
    if (server_option.empty()) return -1;  // from the environment or the config: this command stays local
    std::string list;
    for (const auto& c : capable) list += (list.empty() ? "" : ", ") + c;
    std::cerr << "cp-host: `" << command << "` works on the local files only; --server is for " << list
              << "\n";
    return kUsage;
  }
  std::string why;
  const auto parsed = parse_server_url(server, why);
  if (!parsed) {
    std::cerr << "cp-host: server " << why << "\n";
    return kUsage;
  }
  g.server = server;
  // The nearest says: --token-file on this command line, then CP_HOST_TOKEN, then the config's token file.
  const char* env = std::getenv("CP_HOST_TOKEN");
  const bool from_env = token_file.empty() && env && *env;
  if (from_env) {
    g.token = env;
  } else if (const std::string file = !token_file.empty() ? token_file : config.token_file; !file.empty()) {
    auto token = read_token(file);
    if (!token) return kUsage;
    g.token = *token;
  }
  if (!g.token.empty() && parsed->scheme == "http" && !loopback(parsed->host))
    std::cerr << "cp-host: warning: the token goes in clear over http:// to " << terminal_safe(parsed->host)
              << "; use https://\n";
  return -1;
}

}  // namespace cp::cli
