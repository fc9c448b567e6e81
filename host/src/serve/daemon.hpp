// `cp-host serve` as a daemon: one serve per runtime root (serve.lock, serve.json), the scheduler over the
// queue, the run catalogue and its refresher (which also ends overdue approvals), the optional retention
// janitor, and the REST API over HTTP; until SIGINT or SIGTERM, then everything stops in order. The CLI
// (cli/serve_command.cpp) only turns flags into DaemonOptions.
#pragma once

#include "core/version.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::serve {

struct DaemonOptions {
  std::filesystem::path root = ".";  // the runtime root (made absolute and canonical)
  std::filesystem::path plugins_dir;
  std::string host = "127.0.0.1";
  uint16_t port = 8787;  // 0: any free port
  int concurrency = 2;
  int lock_ttl_sec = 0;               // path locks' TTL; 0: each item's wall-time budget plus a margin
  std::filesystem::path tokens_file;  // empty: no tokens (reads need open_reads, writes are refused)
  bool open_reads = false;            // GET routes without a token; loopback addresses only
  std::filesystem::path repo;         // for submissions that name none; empty: none
  std::vector<std::filesystem::path> allow_repos;
  size_t max_body = 1u << 20;
  int threads = 2;
  bool scheduler = true;
  std::chrono::seconds header_timeout{10};
  double retention_hours = 0;                  // 0: no retention janitor
  std::vector<std::string> cors_origins;       // --cors-origin, checked by the CLI
  std::chrono::seconds session_ttl{8 * 3600};  // --session-ttl
  bool secure_cookies = false;                 // --secure-cookies
  std::filesystem::path ui_dir;  // --ui-dir: the dashboard from this folder, not the built-in one
  bool ui = true;                // --no-ui: no dashboard, every path outside /api is 404
  // --store: the queue's store (a PostgreSQL connection string; empty: CP_HOST_STORE, else queue.jsonl).
  // serve puts it in CP_HOST_STORE, so every part of this process uses it; the runs it starts never get it.
  std::string store;
  std::string worker_id;                       // --worker-id; empty: default_worker_id(root)
  std::chrono::milliseconds lease_ttl{30000};  // --lease-ttl: a node silent this long loses its attempts
  std::string version = CP_HOST_VERSION;
  // Loads the plugins for the canonical `root` (the plugin folder, policies/plugins.json); false when it
  // cannot, having said why.
  std::function<bool(const std::filesystem::path& root, plugin::Registry& registry)> load_plugins;
};

enum class DaemonExit {
  stopped,     // by a signal, cleanly
  bad_option,  // an option, the token file, the plugins or the address cannot be used
  internal,    // serve itself failed
  busy,        // another serve holds this runtime root
  store,       // the store cannot be reached, or its schema is not this build's (the message says which)
};

// Runs serve until SIGINT/SIGTERM. Says what it does on stderr ("cp-host serve: ..."), and the URL it
// listens on on stdout.
DaemonExit run_daemon(const DaemonOptions& o);

}  // namespace cp::serve
