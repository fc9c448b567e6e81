// `cp-host serve`: its flags, turned into the options of the serve daemon (serve/daemon.hpp), which runs
// the scheduler and the REST API over one runtime root until SIGINT/SIGTERM.
// `cp-host tokens add|list|revoke`: the bearer tokens the API accepts.
#include "cli/commands.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "serve/auth.hpp"
#include "serve/daemon.hpp"
#include "store/atomic_file.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <iostream>
#include <regex>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kBusy = 10;  // another serve holds this runtime root
constexpr int kStore = 6;  // the store cannot be reached or is not migrated (as `cp-host db`)

bool split_listen(const std::string& listen, std::string& host, uint16_t& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  host = listen.substr(0, colon);
  try {
    long p = std::stol(listen.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return false;
  }
  return !host.empty();
}

json read_tokens_file(const fs::path& file) {
  json doc = core::read_json_file(file);
  if (doc.is_null()) doc = json{{"schema_version", 1}, {"tokens", json::array()}};
  return doc;
}

// A CORS origin as browsers send it: scheme://host[:port], nothing more ("*" and paths are refused: a
// listed origin gets credentials, so it must be one exact site).
CLI::Validator origin_check() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        static const std::regex origin(
            R"(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?)");
        if (std::regex_match(v, origin)) return "";
        return "'" + v +
               "' is not an origin: give scheme://host[:port] with no path or trailing slash, e.g. "
               "http://127.0.0.1:5173";
      },
      "ORIGIN");
}

struct ServeFlags {
  std::string listen = "127.0.0.1:8787";
  std::string tokens, repo;
  std::vector<std::string> allow_repo;
  int header_timeout = 10;
  long long session_ttl = 8 * 3600;
  bool no_scheduler = false;
  bool no_ui = false;
  serve::DaemonOptions daemon;
};

void add_serve_flags(CLI::App& cmd, ServeFlags& f) {
  serve::DaemonOptions& d = f.daemon;
  cmd.add_option("--listen", f.listen,
                 "HOST:PORT to listen on (default 127.0.0.1:8787; port 0 picks a free one)");
  cmd.add_option("--concurrency", d.concurrency, "Runs at once (default 2); packs may limit theirs further")
      ->check(CLI::Range(1, 256));
  cmd.add_option("--lock-ttl", d.lock_ttl_sec,
                 "Seconds a queued run's path locks last unless serve renews them (it does while the run "
                 "lives), so a leaked lock frees itself; 0, the default: the run's wall-time budget plus 15 "
                 "minutes")
      ->check(CLI::Range(0, 7 * 24 * 3600));
  cmd.add_option(
      "--tokens", f.tokens,
      "Token file (schemas/api_tokens.schema.json) made with `cp-host tokens add`; without it every "
      "route but health and openapi needs --open-reads, and writes are refused");
  cmd.add_flag("--open-reads", d.open_reads,
               "Serve GET routes without a token (only when listening on loopback)");
  cmd.add_option("--repo", f.repo,
                 "Repository for submissions that name none (default: none; allowed always)");
  cmd.add_option("--allow-repo", f.allow_repo,
                 "A repository (or a folder of them) submissions may name (repeatable)");
  cmd.add_option("--max-body", d.max_body, "Largest request body in bytes (default 1 MiB; larger gets 413)");
  cmd.add_option("--threads", d.threads, "HTTP worker threads (default 2)")->check(CLI::Range(1, 64));
  cmd.add_flag("--no-scheduler", f.no_scheduler,
               "Serve the API only; leave queued items to the workers (with --store, another node's)");
  cmd.add_option("--store", d.store,
                 "The queue's store: a PostgreSQL database (postgres://USER[:PASSWORD]@HOST[:PORT]/DB or "
                 "key=value; migrated with `cp-host db migrate`) shared by every node, or jsonl (default: "
                 "$CP_HOST_STORE, else queue.jsonl under the root)");
  cmd.add_option(
         "--worker-id", d.worker_id,
         "This node's name in the store's worker registry (default: host name and a hash of the root)")
      ->check([](const std::string& v) -> std::string {
        static const std::regex id(R"([A-Za-z0-9][A-Za-z0-9._:-]{0,127})");
        return std::regex_match(v, id) ? ""
                                       : "a worker id is letters, digits, '.', '_', ':' or '-' (at most 128)";
      });
  auto* lease = cmd.add_option_function<double>(
      "--lease-ttl",
      [&d](double s) { d.lease_ttl = std::chrono::milliseconds(static_cast<long long>(s * 1000)); },
      "Seconds a node may go without a heartbeat before its runs are taken from it and queued again on "
      "another node (default 30; the node beats five times per TTL)");
  lease->check(CLI::Range(0.5, 3600.0));
  cmd.add_option("--retention-every", d.retention_hours,
                 "Run `retention apply` every this many hours (0, the default: never; see policies/"
                 "retention_policy.json)")
      ->check(CLI::Range(0.0, 24.0 * 365));
  cmd.add_option("--header-timeout", f.header_timeout,
                 "Seconds a client may take to send a request's headers (default 10; then 408 and close)")
      ->check(CLI::Range(1, 3600));
  cmd.add_option(
         "--cors-origin", d.cors_origins,
         "An origin (scheme://host[:port], no path) whose pages may call the API from a browser, with "
         "credentials (repeatable; default: none, so only same-origin pages can)")
      ->check(origin_check());
  cmd.add_option("--session-ttl", f.session_ttl,
                 "Longest life in seconds of a browser session made by POST /api/session (default 28800)")
      ->check(CLI::Range(60LL, 30LL * 24 * 3600));
  cmd.add_flag("--secure-cookies", d.secure_cookies,
               "Mark session cookies Secure: set it when a TLS proxy in front of serve answers browsers");
  cmd.add_option("--ui-dir", d.ui_dir,
                 "Serve the dashboard from this built folder (web/dist after `npm run build`) instead of "
                 "the one built into cp-host; it is read at each request, for working on the dashboard");
  cmd.add_flag("--no-ui", f.no_ui, "Serve no dashboard: every path outside /api is 404");
}

int run_serve(const Globals& g, ServeFlags& f) {
  serve::DaemonOptions& d = f.daemon;
  if (!split_listen(f.listen, d.host, d.port)) {
    std::cerr << "cp-host serve: --listen '" << f.listen << "' is not HOST:PORT (e.g. 127.0.0.1:8787)\n";
    return kUsage;
  }
  d.root = g.root;
  d.plugins_dir = g.plugins_dir;
  d.tokens_file = f.tokens;
  d.repo = f.repo;
  d.allow_repos.assign(f.allow_repo.begin(), f.allow_repo.end());
  d.header_timeout = std::chrono::seconds(f.header_timeout);
  d.session_ttl = std::chrono::seconds(f.session_ttl);
  d.scheduler = !f.no_scheduler;
  d.ui = !f.no_ui;
  d.load_plugins = [&g](const fs::path& root, plugin::Registry& reg) {
    Globals at_root = g;
    at_root.root = root;
    return load_plugins(at_root, reg);
  };
  switch (serve::run_daemon(d)) {
    case serve::DaemonExit::stopped:
      return kOk;
    case serve::DaemonExit::bad_option:
      return kUsage;
    case serve::DaemonExit::internal:
      return kInternal;
    case serve::DaemonExit::busy:
      return kBusy;
    case serve::DaemonExit::store:
      return kStore;
  }
  return kInternal;
}

}  // namespace

void add_serve(CLI::App& app, Globals& g, Runner& run) {
  auto f = std::make_shared<ServeFlags>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Run the queue and serve the REST API (see docs/api.md and GET /api/openapi.json) until "
      "SIGINT/SIGTERM. "
      "One serve per runtime root. Items a killed serve left running are ended (error/host_interrupted) and "
      "retried per their timeout_retry on the next start.\n"
      "Exit codes: 0 stopped cleanly, 2 bad option or token file, 3 internal error, 6 the store cannot be "
      "reached or is not migrated (the message names the command), 10 another serve holds this root (or, "
      "with "
      "--store, a live node holds this --worker-id).");
  add_serve_flags(*cmd, *f);
  cmd->callback([&g, &run, f] { run = [&g, f]() -> int { return run_serve(g, *f); }; });
}

namespace {

struct TokenAddOpts {
  std::string file, id, role = "viewer", note;
};

int token_add(const TokenAddOpts& ao) {
  json doc = read_tokens_file(ao.file);
  if (!doc.is_object() || !doc.contains("tokens") || !doc["tokens"].is_array()) {
    std::cerr << "cp-host tokens: " << ao.file << " is not a token file\n";
    return kUsage;
  }
  for (const auto& t : doc["tokens"])
    if (t.value("id", "") == ao.id) {
      std::cerr << "cp-host tokens: " << ao.file << " already has a token '" << ao.id
                << "'; revoke it first or pick another id\n";
      return kUsage;
    }
  std::string token = serve::generate_token();
  json entry{{"id", ao.id},
             {"role", ao.role},
             {"sha256", serve::token_sha256(token)},
             {"created_at", core::iso_from_ms(core::now_ms())}};
  if (!ao.note.empty()) entry["note"] = ao.note;
  doc["tokens"].push_back(entry);
  store::write_json_atomic(ao.file, doc);
  ::chmod(ao.file.c_str(), 0600);
  std::cout << token << "\n";
  std::cerr << "token '" << ao.id << "' (" << ao.role << ") added to " << ao.file
            << "; this is the only time it is shown\n";
  return kOk;
}

int token_list(const std::string& file, bool as_json) {
  try {
    serve::TokenStore::load(file);
  } catch (const std::exception& e) {
    std::cerr << "cp-host tokens: " << e.what() << "\n";
    return kUsage;
  }
  // A named document: a range-for over a member of the returned temporary would walk freed memory.
  const json doc = read_tokens_file(file);
  if (as_json) {
    // Ids, roles and times only: the hashes stay in the file.
    json out = json::array();
    for (const auto& t : doc.value("tokens", json::array()))
      out.push_back({{"id", t.value("id", "")},
                     {"role", t.value("role", "")},
                     {"created_at", t.value("created_at", "")}});
    std::cout << json{{"tokens", out}, {"count", out.size()}}.dump(2) << "\n";
    return kOk;
  }
  for (const auto& t : doc.value("tokens", json::array()))
    std::cout << t.value("id", "") << "\t" << t.value("role", "") << "\t" << t.value("created_at", "")
              << "\n";
  return kOk;
}

int token_revoke(const std::string& file, const std::string& id) {
  json doc = read_tokens_file(file);
  json kept = json::array();
  bool found = false;
  for (const auto& t : doc.value("tokens", json::array())) {
    if (t.value("id", "") == id)
      found = true;
    else
      kept.push_back(t);
  }
  if (!found) {
    std::cerr << "cp-host tokens: no token '" << id << "' in " << file << "\n";
    return kInvalid;
  }
  doc["tokens"] = kept;
  store::write_json_atomic(file, doc);
  std::cout << "revoked " << id << "\n";
  return kOk;
}

}  // namespace

void add_tokens(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("tokens", "Bearer tokens for the REST API (only their SHA-256 is stored)");
  cmd->require_subcommand(1);
  auto ao = std::make_shared<TokenAddOpts>();
  auto* add = cmd->add_subcommand("add", "Make a token, store its hash in FILE, print the token once");
  add->add_option("--file", ao->file, "Token file (created 0600 when missing)")->required();
  add->add_option("--id", ao->id, "Name of the holder, shown in logs and decisions")->required();
  add->add_option("--role", ao->role, "viewer (read), operator (submit, cancel), admin (everything)")
      ->check(CLI::IsMember({"viewer", "operator", "admin"}));
  add->add_option("--note", ao->note, "Free text kept with the entry");
  add->callback([&run, ao] { run = [ao]() -> int { return token_add(*ao); }; });
  auto lf = std::make_shared<std::string>();
  auto* list = cmd->add_subcommand("list", "Token ids and roles in FILE");
  list->add_option("--file", *lf, "Token file")->required();
  auto list_json = std::make_shared<bool>(false);
  list->add_flag("--json", *list_json, "Print {tokens: [{id, role, created_at}], count}");
  list->callback(
      [&run, lf, list_json] { run = [lf, list_json]() -> int { return token_list(*lf, *list_json); }; });
  struct RevokeOpts {
    std::string file, id;
  };
  auto ro = std::make_shared<RevokeOpts>();
  auto* revoke = cmd->add_subcommand("revoke", "Remove a token from FILE (restart serve to apply)");
  revoke->add_option("--file", ro->file, "Token file")->required();
  revoke->add_option("--id", ro->id, "Token id")->required();
  revoke->callback([&run, ro] { run = [ro]() -> int { return token_revoke(ro->file, ro->id); }; });
}

}  // namespace cp::cli
