#include "serve/daemon.hpp"
#include "plugin/search_path.hpp"

#include "core/clock.hpp"
#include "core/runtime_paths.hpp"
#include "db/migrations.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_service.hpp"
#include "serve/access_log.hpp"
#include "serve/alert_rules.hpp"
#include "serve/api.hpp"
#include "serve/auth.hpp"
#include "serve/background.hpp"
#include "serve/command_tower.hpp"
#include "serve/http_server.hpp"
#include "serve/metrics.hpp"
#include "serve/openapi.hpp"
#include "serve/run_catalog.hpp"
#include "serve/run_mirror.hpp"
#include "serve/run_replicas.hpp"
#include "serve/scheduler.hpp"
#include "serve/serve_lock.hpp"
#include "serve/ui_assets.hpp"
#include "serve/worker_registry.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>

namespace cp::serve {

namespace fs = std::filesystem;

namespace {

std::optional<TokenStore> load_tokens(const DaemonOptions& o) {
  if (o.tokens_file.empty()) return TokenStore{};
  try {
    return TokenStore::load(o.tokens_file);
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: " << e.what() << "\n";
    return std::nullopt;
  }
}

// The API's configuration; nullopt (having said why) when --repo or an --allow-repo is not a folder.
std::optional<ApiConfig> api_config(const DaemonOptions& o, const fs::path& root) {
  ApiConfig cfg;
  cfg.root = root;
  cfg.open_reads = o.open_reads;
  cfg.version = o.version;
  cfg.openapi = std::string(openapi_document());
  cfg.plugins_dir = plugin::absolute_search_path(o.plugins_dir);
  cfg.cors_origins = o.cors_origins;
  cfg.session_ttl = o.session_ttl;
  cfg.secure_cookies = o.secure_cookies;
  cfg.loopback_host_only = resolves_to_loopback(o.host);
  try {
    if (!o.ui_dir.empty())
      cfg.ui = UiAssets::from_dir(o.ui_dir);
    else if (o.ui)
      cfg.ui = UiAssets::embedded();
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: " << e.what() << "\n";
    return std::nullopt;
  }
  std::error_code ec;
  if (!o.repo.empty()) {
    cfg.default_repo = fs::weakly_canonical(fs::absolute(o.repo), ec);
    if (!fs::is_directory(cfg.default_repo)) {
      std::cerr << "cp-host serve: --repo " << o.repo.string() << " is not a folder\n";
      return std::nullopt;
    }
    cfg.allowed_repos.push_back(cfg.default_repo);
  }
  for (const auto& a : o.allow_repos) {
    fs::path p = fs::weakly_canonical(fs::absolute(a), ec);
    if (!fs::is_directory(p)) {
      std::cerr << "cp-host serve: --allow-repo " << a.string() << " is not a folder\n";
      return std::nullopt;
    }
    cfg.allowed_repos.push_back(p);
  }
  return cfg;
}

// SIGINT and SIGTERM are taken by sigwait; blocked before any thread starts so every thread inherits it.
sigset_t block_stop_signals() {
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  return stop_set;
}

// The files libpq reads secrets from, as they exist on this machine: PGPASSFILE or ~/.pgpass,
// PGSERVICEFILE or ~/.pg_service.conf, the client keys and certificates (~/.postgresql, PGSSLKEY, ...),
// and every file the connection string names.
std::vector<fs::path> libpq_secret_files(const std::string& conninfo) {
  std::vector<fs::path> out;
  const char* home = std::getenv("HOME");
  auto keep = [&](const fs::path& p) {
    std::error_code ec;
    if (!p.empty() && fs::exists(p, ec)) out.push_back(fs::absolute(p).lexically_normal());
  };
  auto env_or_home = [&](const char* env, const char* in_home) {
    const char* v = std::getenv(env);
    keep(v && *v ? fs::path(v) : home && *home && in_home ? fs::path(home) / in_home : fs::path());
  };
  env_or_home("PGPASSFILE", ".pgpass");
  env_or_home("PGSERVICEFILE", ".pg_service.conf");
  env_or_home("PGSSLKEY", ".postgresql");
  for (const char* env : {"PGSSLCERT", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR"}) env_or_home(env, nullptr);
  for (const auto& f : db::conninfo_files(conninfo)) keep(f);
  return out;
}

// The scheduler, after it has ended what a stopped serve left running; a long queue file is compacted.
std::unique_ptr<Scheduler> make_scheduler(const DaemonOptions& o, const fs::path& root,
                                          queue::QueueService& queue, RunCatalog& catalog,
                                          WorkerRegistry& workers, const std::string& worker_id,
                                          RunMirror* mirror) {
  SchedulerOptions so;
  so.root = root;
  so.plugins_dir = plugin::absolute_search_path(o.plugins_dir);
  so.concurrency = o.concurrency;
  so.lock_ttl = std::chrono::seconds(o.lock_ttl_sec);
  // Runs never see the token file, wherever it lives (its hashes are still worth guessing at), nor
  // libpq's password and service files when the store is a database.
  if (!o.tokens_file.empty()) so.hidden.push_back(fs::absolute(o.tokens_file).lexically_normal());
  if (queue::StoreChoice store = queue::configured_store(); store.kind == "postgres")
    for (const fs::path& f : libpq_secret_files(store.store)) so.hidden.push_back(f);
  so.on_run_done = [&catalog](const std::string& id) { catalog.update(id); };
  so.worker_id = worker_id;
  so.registry = &workers;
  so.lease_ttl = o.lease_ttl;
  so.mirror = mirror;
  if (mirror) so.idle_tick = std::chrono::seconds(1);
  auto scheduler = std::make_unique<Scheduler>(queue, so);
  int ended = scheduler->recover();
  if (ended > 0)
    std::cerr << "cp-host serve: ended " << ended << " attempt(s) a stopped serve left running\n";
  queue.compact({24LL * 3600 * 1000, 20000});
  return scheduler;
}

void index_runs(RunCatalog& catalog) {
  auto t0 = std::chrono::steady_clock::now();
  CatalogStart s = catalog.start();
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  if (!s.index_problem.empty())
    std::cerr << "cp-host serve: the run index was not used (" << s.index_problem
              << "); the runs were read from their bundles\n";
  std::cerr << "cp-host serve: indexed " << catalog.size() << " runs in " << ms << " ms ("
            << (s.from_index ? std::to_string(s.indexed) + " from the run index, " : std::string()) << s.read
            << " manifests read" << (s.listed ? ", runs folder listed" : "") << ")\n";
}

HttpOptions http_options(const DaemonOptions& o) {
  HttpOptions ho;
  ho.host = o.host;
  ho.port = o.port;
  ho.threads = o.threads;
  ho.max_body = o.max_body;
  ho.header_timeout = o.header_timeout;
  ho.loopback_only = o.open_reads;  // checked on the resolved address the server binds
  return ho;
}

// Everything that runs while this process holds the root, until a stop signal; then stops it in order.
DaemonExit serve_until_signal(const DaemonOptions& o, const fs::path& root, const ServeLock& lock,
                              const TokenStore& tokens, ApiConfig cfg, const plugin::Registry& reg,
                              const AlertPolicy& alerts, const sigset_t& stop_set) {
  const std::string worker_id = o.worker_id.empty() ? default_worker_id(root.string()) : o.worker_id;
  std::unique_ptr<WorkerRegistry> workers;
  try {
    workers = open_worker_registry(worker_id);
    WorkerInfo self;
    self.worker_id = worker_id;
    self.host = host_name();
    self.root = root.string();
    self.pid = static_cast<int>(::getpid());
    self.scheduler = o.scheduler;
    self.lease_ms = o.lease_ttl.count();
    workers->join(self);
  } catch (const WorkerIdInUse& e) {
    std::cerr << "cp-host serve: " << e.what() << "\n";
    return DaemonExit::busy;
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: the worker registry: " << e.what() << "\n";
    return DaemonExit::store;
  }
  const auto ttl = o.lease_ttl;
  WorkerRegistry* reg_ptr = workers.get();
  cfg.workers = [reg_ptr] {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& w : reg_ptr->list()) all.push_back(to_json(w));
    return all;
  };
  queue::QueueService queue(root, &reg);
  CatalogIndex index;
  index.file = core::run_index_file(root);
  RunCatalog catalog(root, index);
  // With a shared store, this node's runs go to the database as they happen, and every other node's runs
  // come back from it as local copies: any node lists, streams and serves every run.
  std::unique_ptr<RunMirror> mirror;
  std::unique_ptr<RunReplicas> replicas;
  if (queue::StoreChoice store = queue::configured_store(); store.kind == "postgres") {
    if (o.scheduler) mirror = std::make_unique<RunMirror>(root, store.store, worker_id);
    replicas = std::make_unique<RunReplicas>(root, store.store, worker_id,
                                             [&catalog](const std::string& id) { catalog.update(id); });
  }
  std::unique_ptr<Scheduler> scheduler;
  if (o.scheduler) scheduler = make_scheduler(o, root, queue, catalog, *workers, worker_id, mirror.get());
  // The node's lease: beats several times per TTL, so one slow beat does not lose it.
  Scheduler* sched_ptr = scheduler.get();
  Heartbeat heartbeat(*workers, std::max<std::chrono::milliseconds>(ttl / 5, std::chrono::milliseconds(100)),
                      [sched_ptr] { return sched_ptr ? sched_ptr->stats().running : 0; });
  index_runs(catalog);
  CommandTower tower(root, catalog.stats(), alerts);
  tower.refresh_queue(queue.backend(), core::now_ms());
  Metrics metrics;
  std::unique_ptr<AccessLog> access;
  try {
    access = std::make_unique<AccessLog>(root);
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: access log: " << e.what() << "\n";
    return DaemonExit::internal;
  }
  Api api(cfg, tokens, catalog, queue, scheduler.get(), &reg, metrics, &tower);
  HttpServer http(api, metrics, access.get(), http_options(o));
  uint16_t bound = 0;
  try {
    bound = http.start();
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: " << e.what() << "\n";
    return DaemonExit::bad_option;
  }
  std::string url = "http://" + o.host + ":" + std::to_string(bound);
  lock.publish(url, scheduler != nullptr);
  if (scheduler) scheduler->start();
  CatalogRefresher refresher(root, catalog, &tower, &queue.backend());
  refresher.start();
  LaneMeasurer lanes(tower, std::chrono::seconds(alerts.retention_check_every_sec));
  if (alerts.retention_over_cap.enabled) lanes.start();
  std::unique_ptr<RetentionJanitor> janitor;
  if (o.retention_hours > 0) {
    auto every = std::chrono::milliseconds(static_cast<long long>(o.retention_hours * 3600 * 1000));
    janitor = std::make_unique<RetentionJanitor>(root, reg, every);
    janitor->start();
  }
  std::cout << "cp-host serve: listening on " << url << " (root " << root.string() << ", "
            << (scheduler ? "scheduler on, concurrency " + std::to_string(o.concurrency) : "scheduler off")
            << ")" << std::endl;

  int sig = 0;
  sigwait(&stop_set, &sig);
  std::cerr << "cp-host serve: signal " << sig << ", stopping" << std::endl;
  refresher.stop();
  try {
    catalog.save_index();  // the next start reads one file, not every manifest
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: the run index could not be saved: " << e.what() << "\n";
  }
  lanes.stop();
  if (janitor) janitor->stop();
  http.stop();
  if (scheduler) scheduler->stop();
  lock.withdraw();
  // ~Heartbeat records the clean stop: this node holds nothing any more.
  return DaemonExit::stopped;
}

}  // namespace

DaemonExit run_daemon(const DaemonOptions& o) {
  if (o.open_reads && !resolves_to_loopback(o.host)) {  // the resolved addresses decide, not the name's text
    std::cerr << "cp-host serve: --open-reads is only allowed on a loopback address, not " << o.host
              << "; give readers viewer tokens instead\n";
    return DaemonExit::bad_option;
  }
  fs::path root = fs::weakly_canonical(fs::absolute(o.root));
  fs::create_directories(core::runtime_dir(root));
  auto lock = ServeLock::take(root);
  if (!lock) {
    std::cerr << "cp-host serve: another cp-host serve holds " << root.string() << ServeLock::holder(root)
              << "; stop it first\n";
    return DaemonExit::busy;
  }
  auto tokens = load_tokens(o);
  if (!tokens) return DaemonExit::bad_option;
  auto cfg = api_config(o, root);
  if (!cfg) return DaemonExit::bad_option;
  std::string why;
  auto alerts = load_alert_policy(root, why);  // a broken alerts.json is refused before anything starts
  if (!alerts) {
    std::cerr << "cp-host serve: " << why << "\n";
    return DaemonExit::bad_option;
  }
  // The store, named before any thread starts: every part of this process (never a run it starts) reads
  // CP_HOST_STORE. A database that cannot be reached or is not migrated is refused here.
  if (!o.store.empty()) ::setenv("CP_HOST_STORE", o.store.c_str(), 1);
  try {
    queue::StoreChoice store = queue::configured_store();
    if (store.kind == "postgres") {
      db::PgConnection c(store.store);
      db::require_current_schema(c);
    }
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: the store: " << e.what() << "\n";
    return DaemonExit::store;
  }
  const sigset_t stop_set = block_stop_signals();
  plugin::Registry reg;
  if (!o.load_plugins || !o.load_plugins(root, reg)) return DaemonExit::bad_option;
  return serve_until_signal(o, root, *lock, *tokens, *cfg, reg, *alerts, stop_set);
}

}  // namespace cp::serve
