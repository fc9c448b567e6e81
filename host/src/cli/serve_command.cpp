// `cp-host serve`: the scheduler and the REST API over one runtime root, until SIGINT/SIGTERM.
// `cp-host tokens add|list|revoke`: the bearer tokens the API accepts.
#include "cli/commands.hpp"
#include "control/approvals.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_service.hpp"
#include "queue/queue_store.hpp"
#include "retention/retention.hpp"
#include "serve/access_log.hpp"
#include "serve/api.hpp"
#include "serve/auth.hpp"
#include "serve/http_server.hpp"
#include "serve/metrics.hpp"
#include "serve/openapi.hpp"
#include "serve/run_catalog.hpp"
#include "serve/scheduler.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cortexpilot/plugin.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kBusy = 10;  // another serve holds this runtime root

bool is_loopback(const std::string& host) {
  return serve::resolves_to_loopback(host);  // the resolved addresses decide, not the name's text
}

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

}  // namespace

void add_serve(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string listen = "127.0.0.1:8787";
    int concurrency = 2;
    std::string tokens;
    bool open_reads = false;
    std::string repo;
    std::vector<std::string> allow_repo;
    size_t max_body = 1u << 20;
    int threads = 2;
    bool no_scheduler = false;
    int header_timeout = 10;
    double retention_hours = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Run the queue and serve the REST API (see docs/api.md and GET /api/openapi.json) until "
      "SIGINT/SIGTERM. "
      "One serve per runtime root. Items a killed serve left running are ended (error/host_interrupted) and "
      "retried per their timeout_retry on the next start.\n"
      "Exit codes: 0 stopped cleanly, 2 bad option or token file, 3 internal error, 10 another serve holds "
      "this root.");
  cmd->add_option("--listen", o->listen,
                  "HOST:PORT to listen on (default 127.0.0.1:8787; port 0 picks a free one)");
  cmd->add_option("--concurrency", o->concurrency, "Runs at once (default 2); packs may limit theirs further")
      ->check(CLI::Range(1, 256));
  cmd->add_option(
      "--tokens", o->tokens,
      "Token file (schemas/api_tokens.schema.json) made with `cp-host tokens add`; without it every "
      "route but health and openapi needs --open-reads, and writes are refused");
  cmd->add_flag("--open-reads", o->open_reads,
                "Serve GET routes without a token (only when listening on loopback)");
  cmd->add_option("--repo", o->repo,
                  "Repository for submissions that name none (default: none; allowed always)");
  cmd->add_option("--allow-repo", o->allow_repo,
                  "A repository (or a folder of them) submissions may name (repeatable)");
  cmd->add_option("--max-body", o->max_body,
                  "Largest request body in bytes (default 1 MiB; larger gets 413)");
  cmd->add_option("--threads", o->threads, "HTTP worker threads (default 2)")->check(CLI::Range(1, 64));
  cmd->add_flag("--no-scheduler", o->no_scheduler, "Serve the API only; leave queued items waiting");
  cmd->add_option("--retention-every", o->retention_hours,
                  "Run `retention apply` every this many hours (0, the default: never; see policies/"
                  "retention_policy.json)")
      ->check(CLI::Range(0.0, 24.0 * 365));
  cmd->add_option("--header-timeout", o->header_timeout,
                  "Seconds a client may take to send a request's headers (default 10; then 408 and close)")
      ->check(CLI::Range(1, 3600));
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      std::string host;
      uint16_t port = 0;
      if (!split_listen(o->listen, host, port)) {
        std::cerr << "cp-host serve: --listen '" << o->listen << "' is not HOST:PORT (e.g. 127.0.0.1:8787)\n";
        return kUsage;
      }
      if (o->open_reads && !is_loopback(host)) {
        std::cerr << "cp-host serve: --open-reads is only allowed on a loopback address, not " << host
                  << "; give readers viewer tokens instead\n";
        return kUsage;
      }
      fs::path root = fs::weakly_canonical(fs::absolute(g.root));
      fs::path rt = core::runtime_dir(root);
      fs::create_directories(rt);
      int lock_fd = ::open(core::serve_lock_file(root).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        json info = core::read_json_file(core::serve_info_file(root));
        std::cerr << "cp-host serve: another cp-host serve holds " << root.string()
                  << (info.is_object() ? " (pid " + std::to_string(info.value("pid", 0)) + ", " +
                                             info.value("url", "") + ")"
                                       : std::string())
                  << "; stop it first\n";
        return kBusy;
      }
      serve::TokenStore tokens;
      if (!o->tokens.empty()) {
        try {
          tokens = serve::TokenStore::load(o->tokens);
        } catch (const std::exception& e) {
          std::cerr << "cp-host serve: " << e.what() << "\n";
          return kUsage;
        }
      }
      serve::ApiConfig cfg;
      cfg.root = root;
      cfg.open_reads = o->open_reads;
      cfg.version = "0.1.0";
      cfg.openapi = std::string(serve::openapi_document());
      cfg.plugins_dir = fs::absolute(g.plugins_dir);
      std::error_code ec;
      if (!o->repo.empty()) {
        cfg.default_repo = fs::weakly_canonical(fs::absolute(o->repo), ec);
        if (!fs::is_directory(cfg.default_repo)) {
          std::cerr << "cp-host serve: --repo " << o->repo << " is not a folder\n";
          return kUsage;
        }
        cfg.allowed_repos.push_back(cfg.default_repo);
      }
      for (const auto& a : o->allow_repo) {
        fs::path p = fs::weakly_canonical(fs::absolute(a), ec);
        if (!fs::is_directory(p)) {
          std::cerr << "cp-host serve: --allow-repo " << a << " is not a folder\n";
          return kUsage;
        }
        cfg.allowed_repos.push_back(p);
      }

      // Signals are taken by sigwait below; blocked before any thread starts so every thread inherits it.
      sigset_t stop_set;
      sigemptyset(&stop_set);
      sigaddset(&stop_set, SIGINT);
      sigaddset(&stop_set, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

      plugin::Registry reg;
      Globals gg = g;
      gg.root = root;
      if (!load_plugins(gg, reg)) return kUsage;
      queue::QueueService queue(root, &reg);
      std::unique_ptr<serve::Scheduler> scheduler;
      serve::RunCatalog catalog(root);
      if (!o->no_scheduler) {
        serve::SchedulerOptions so;
        so.root = root;
        so.plugins_dir = fs::absolute(g.plugins_dir);
        so.concurrency = o->concurrency;
        // Runs never see the token file, wherever it lives (its hashes are still worth guessing at).
        if (!o->tokens.empty()) so.hidden.push_back(fs::absolute(o->tokens).lexically_normal());
        so.on_run_done = [&catalog](const std::string& id) { catalog.update(id); };
        scheduler = std::make_unique<serve::Scheduler>(queue, so);
        int ended = scheduler->recover();
        if (ended > 0)
          std::cerr << "cp-host serve: ended " << ended << " attempt(s) a stopped serve left running\n";
        queue.compact({24LL * 3600 * 1000, 20000});
      }
      auto t0 = std::chrono::steady_clock::now();
      catalog.refresh();
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                    .count();
      std::cerr << "cp-host serve: indexed " << catalog.size() << " runs in " << ms << " ms\n";

      serve::Metrics metrics;
      std::unique_ptr<serve::AccessLog> access;
      try {
        access = std::make_unique<serve::AccessLog>(root);
      } catch (const std::exception& e) {
        std::cerr << "cp-host serve: access log: " << e.what() << "\n";
        return kInternal;
      }
      serve::Api api(cfg, tokens, catalog, queue, scheduler.get(), &reg, metrics);
      serve::HttpOptions ho;
      ho.host = host;
      ho.port = port;
      ho.threads = o->threads;
      ho.max_body = o->max_body;
      ho.header_timeout = std::chrono::seconds(o->header_timeout);
      ho.loopback_only = o->open_reads;  // checked on the resolved address the server binds
      serve::HttpServer http(api, metrics, access.get(), ho);
      uint16_t bound = 0;
      try {
        bound = http.start();
      } catch (const std::exception& e) {
        std::cerr << "cp-host serve: " << e.what() << "\n";
        return kUsage;
      }
      std::string url = "http://" + host + ":" + std::to_string(bound);
      store::write_json_atomic(core::serve_info_file(root),
                               json{{"pid", static_cast<long>(::getpid())},
                                    {"url", url},
                                    {"started_at", core::iso_from_ms(core::now_ms())},
                                    {"scheduler", scheduler ? "on" : "off"}});
      if (scheduler) scheduler->start();
      std::atomic<bool> stopping{false};
      std::thread refresher([&] {
        while (!stopping.load()) {
          for (int i = 0; i < 10 && !stopping.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          catalog.refresh();
          // Approval deadlines: a run nobody decided in time is denied by rule (default-deny).
          for (const auto& id : control::expire_overdue(root)) {
            catalog.update(id);
            std::cerr << "cp-host serve: run " << id << " denied: approval deadline passed\n";
          }
        }
      });
      std::thread janitor;
      if (o->retention_hours > 0)
        janitor = std::thread([&] {
          auto every = std::chrono::milliseconds(static_cast<long long>(o->retention_hours * 3600 * 1000));
          auto next = std::chrono::steady_clock::now() + every;
          while (!stopping.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            if (std::chrono::steady_clock::now() < next) continue;
            next += every;
            try {
              retention::Options ro;
              ro.root = root;
              json rep = retention::apply(ro, reg, retention::plan(ro, reg));
              std::cerr << "cp-host serve: retention deleted " << rep["totals"].value("deleted", 0)
                        << " entries, " << rep["totals"].value("reclaimed_bytes", 0LL) << " bytes\n";
            } catch (const std::exception& e) {
              std::cerr << "cp-host serve: retention: " << e.what() << "\n";
            }
          }
        });
      std::cout << "cp-host serve: listening on " << url << " (root " << root.string() << ", "
                << (scheduler ? "scheduler on, concurrency " + std::to_string(o->concurrency)
                              : "scheduler off")
                << ")" << std::endl;

      int sig = 0;
      sigwait(&stop_set, &sig);
      std::cerr << "cp-host serve: signal " << sig << ", stopping" << std::endl;
      stopping.store(true);
      refresher.join();
      if (janitor.joinable()) janitor.join();
      http.stop();
      if (scheduler) scheduler->stop();
      fs::remove(core::serve_info_file(root), ec);
      ::close(lock_fd);
      return kOk;
    };
  });
}

void add_tokens(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("tokens", "Bearer tokens for the REST API (only their SHA-256 is stored)");
  cmd->require_subcommand(1);
  struct AddOpts {
    std::string file, id, role = "viewer", note;
  };
  auto ao = std::make_shared<AddOpts>();
  auto* add = cmd->add_subcommand("add", "Make a token, store its hash in FILE, print the token once");
  add->add_option("--file", ao->file, "Token file (created 0600 when missing)")->required();
  add->add_option("--id", ao->id, "Name of the holder, shown in logs and decisions")->required();
  add->add_option("--role", ao->role, "viewer (read), operator (submit, cancel), admin (everything)")
      ->check(CLI::IsMember({"viewer", "operator", "admin"}));
  add->add_option("--note", ao->note, "Free text kept with the entry");
  add->callback([&run, ao] {
    run = [ao]() -> int {
      json doc = read_tokens_file(ao->file);
      if (!doc.is_object() || !doc.contains("tokens") || !doc["tokens"].is_array()) {
        std::cerr << "cp-host tokens: " << ao->file << " is not a token file\n";
        return kUsage;
      }
      for (const auto& t : doc["tokens"])
        if (t.value("id", "") == ao->id) {
          std::cerr << "cp-host tokens: " << ao->file << " already has a token '" << ao->id
                    << "'; revoke it first or pick another id\n";
          return kUsage;
        }
      std::string token = serve::generate_token();
      json entry{{"id", ao->id},
                 {"role", ao->role},
                 {"sha256", serve::token_sha256(token)},
                 {"created_at", core::iso_from_ms(core::now_ms())}};
      if (!ao->note.empty()) entry["note"] = ao->note;
      doc["tokens"].push_back(entry);
      store::write_json_atomic(ao->file, doc);
      ::chmod(ao->file.c_str(), 0600);
      std::cout << token << "\n";
      std::cerr << "token '" << ao->id << "' (" << ao->role << ") added to " << ao->file
                << "; this is the only time it is shown\n";
      return kOk;
    };
  });
  auto lf = std::make_shared<std::string>();
  auto* list = cmd->add_subcommand("list", "Token ids and roles in FILE");
  list->add_option("--file", *lf, "Token file")->required();
  list->callback([&run, lf] {
    run = [lf]() -> int {
      try {
        serve::TokenStore::load(*lf);
      } catch (const std::exception& e) {
        std::cerr << "cp-host tokens: " << e.what() << "\n";
        return kUsage;
      }
      // A named document: a range-for over a member of the returned temporary would walk freed memory.
      const json doc = read_tokens_file(*lf);
      for (const auto& t : doc.value("tokens", json::array()))
        std::cout << t.value("id", "") << "\t" << t.value("role", "") << "\t" << t.value("created_at", "")
                  << "\n";
      return kOk;
    };
  });
  struct RevokeOpts {
    std::string file, id;
  };
  auto ro = std::make_shared<RevokeOpts>();
  auto* revoke = cmd->add_subcommand("revoke", "Remove a token from FILE (restart serve to apply)");
  revoke->add_option("--file", ro->file, "Token file")->required();
  revoke->add_option("--id", ro->id, "Token id")->required();
  revoke->callback([&run, ro] {
    run = [ro]() -> int {
      json doc = read_tokens_file(ro->file);
      json kept = json::array();
      bool found = false;
      for (const auto& t : doc.value("tokens", json::array())) {
        if (t.value("id", "") == ro->id)
          found = true;
        else
          kept.push_back(t);
      }
      if (!found) {
        std::cerr << "cp-host tokens: no token '" << ro->id << "' in " << ro->file << "\n";
        return kInvalid;
      }
      doc["tokens"] = kept;
      store::write_json_atomic(ro->file, doc);
      std::cout << "revoked " << ro->id << "\n";
      return kOk;
    };
  });
}

}  // namespace cp::cli
