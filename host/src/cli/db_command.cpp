// `cp-host db migrate|status`: the PostgreSQL store's schema and health. The store is named by --store
// (a connection string), else CP_HOST_STORE, else libpq's PG* variables.
#include "cli/commands.hpp"
#include "db/migrations.hpp"
#include "db/run_store.hpp"
#include "queue/queue_backend.hpp"
#include "serve/worker_registry.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>

namespace cp::cli {

using nlohmann::json;

namespace {

constexpr int kUnreachable = 6;  // the database could not be reached (the message says why)

struct DbOpts {
  std::string store;
  bool json = false;
};

std::string store_of(const DbOpts& o) {
  if (!o.store.empty()) return o.store;
  const char* env = std::getenv("CP_HOST_STORE");
  return env ? env : "";
}

json migration_json(const db::Migration& m) {
  return {{"version", m.version}, {"name", m.name}};
}

// Queue and lease health, read through the queue backend (only on a current schema).
json queue_health(const std::string& store) {
  queue::BackendOptions o;
  o.kind = "postgres";
  o.store = store;
  auto backend = queue::open_queue_backend(o);
  auto snap = backend->list();
  const int64_t now = queue::now_ms();
  std::map<std::string, int> by_state;
  int held_locks = 0;
  for (const auto& [id, it] : snap->state.items()) ++by_state[queue::to_string(it.state)];
  held_locks = static_cast<int>(queue::held_locks(snap->state, now).size());
  int expired = static_cast<int>(queue::expired_locks(snap->state, now).size());
  return {{"items", snap->state.items().size()},
          {"by_state", by_state},
          {"path_locks_held", held_locks},
          {"path_locks_expired_unreaped", expired},
          {"problems", snap->problems.size()}};
}

// The nodes in the registry, judged with the lease TTL, and the attempts each holds.
json workers_health(const std::string& store) {
  ::setenv("CP_HOST_STORE", store.c_str(), 1);  // the registry opens the store this process names
  auto registry = serve::open_worker_registry("cp-host-db-status");
  queue::BackendOptions o;
  o.kind = "postgres";
  o.store = store;
  auto snap = queue::open_queue_backend(o)->list();
  std::map<std::string, int> held;
  for (const auto& [id, it] : snap->state.items())
    if (it.active()) ++held[it.current()->worker];
  json all = json::array();
  for (const auto& w : registry->list()) {
    json j = serve::to_json(w);
    j["attempts_held"] = held[w.worker_id];
    all.push_back(j);
  }
  return all;
}

int run_db(const DbOpts& o, bool do_migrate) {
  const std::string store = store_of(o);
  try {
    db::PgConnection c(store);
    json out{{"store", c.redacted().empty() ? "(PG* variables)" : c.redacted()}};
    if (do_migrate) {
      auto applied = db::migrate(c);
      json a = json::array();
      for (const auto& m : applied) a.push_back(migration_json(m));
      out["applied"] = a;
      out["version"] = db::latest_schema_version();
      if (o.json) {
        std::cout << out.dump(2) << "\n";
      } else if (applied.empty()) {
        std::cout << "schema already current (version " << db::latest_schema_version()
                  << "): nothing to do\n";
      } else {
        for (const auto& m : applied) std::cout << "applied " << m.version << ": " << m.name << "\n";
        std::cout << "schema now at version " << db::latest_schema_version() << "\n";
      }
      return kOk;
    }
    db::SchemaStatus s = db::schema_status(c);
    out["version"] = s.version;
    out["latest"] = s.latest;
    out["current"] = s.version == s.latest;
    json pending = json::array();
    for (const auto& m : s.pending) pending.push_back(migration_json(m));
    out["pending"] = pending;
    if (s.version == s.latest) {
      out["queue"] = queue_health(store);
      out["workers"] = workers_health(store);
      db::RunStoreSummary r = db::RunStore(c).summary();
      out["runs"] = {{"runs", r.runs},
                     {"sealed", r.sealed},
                     {"fenced", r.fenced},
                     {"open", r.open},
                     {"events", r.events},
                     {"bundle_bytes", r.bundle_bytes},
                     {"staged_bytes", r.staged_bytes}};
    }
    if (o.json) {
      std::cout << out.dump(2) << "\n";
    } else {
      std::cout << "store:   " << out["store"].get<std::string>() << "\n"
                << "schema:  version " << s.version << " of " << s.latest
                << (s.version == s.latest  ? " (current)"
                    : s.version > s.latest ? " (newer than this cp-host)"
                                           : " (run `cp-host db migrate`)")
                << "\n";
      for (const auto& m : s.pending) std::cout << "pending: " << m.version << ": " << m.name << "\n";
      if (out.contains("queue")) {
        const json& q = out["queue"];
        std::cout << "queue:   " << q["items"].get<size_t>() << " items";
        for (const auto& [state, n] : q["by_state"].items())
          std::cout << ", " << n.get<int>() << " " << state;
        if (q["problems"].get<size_t>() > 0)
          std::cout << "\nproblems: " << q["problems"].get<size_t>()
                    << " operation(s) of the log could not be read or did not fit (see `cp-host queue list`)";
        std::cout << "\nlocks:   " << q["path_locks_held"].get<int>() << " path locks held, "
                  << q["path_locks_expired_unreaped"].get<int>() << " expired and not yet reaped\n";
        const json& r = out["runs"];
        std::cout << "runs:    " << r["runs"].get<int64_t>() << " in the index ("
                  << r["sealed"].get<int64_t>() << " sealed, " << r["open"].get<int64_t>() << " open, "
                  << r["fenced"].get<int64_t>() << " cut off by the fence), " << r["events"].get<int64_t>()
                  << " events, " << r["bundle_bytes"].get<int64_t>() << " bytes of sealed bundles, "
                  << r["staged_bytes"].get<int64_t>() << " bytes staged for seals not made yet\n";
        for (const auto& w : out["workers"])
          std::cout << "worker:  " << w["worker_id"].get<std::string>() << " on "
                    << w["host"].get<std::string>() << (w["scheduler"].get<bool>() ? "" : " (API only)")
                    << ": "
                    << (w["alive"].get<bool>()     ? "alive"
                        : w.contains("stopped_at") ? "stopped"
                                                   : "LEASE LAPSED")
                    << ", last heartbeat " << w["heartbeat_at"].get<std::string>() << ", "
                    << w["attempts_held"].get<int>() << " attempt(s) held\n";
      }
    }
    return s.version == s.latest ? kOk : kInvalid;
  } catch (const db::DbError& e) {
    std::cerr
        << "cp-host db: " << e.what() << "\n"
        << "  name the database with --store postgres://USER@HOST/DB (or CP_HOST_STORE, or PG* variables)\n";
    if (e.sqlstate() == "config") return kUsage;
    return e.transient() ? kUnreachable : kInternal;
  } catch (const std::exception& e) {
    std::cerr << "cp-host db: " << e.what() << "\n";
    return kInternal;
  }
}

}  // namespace

void add_db(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand(
      "db",
      "The PostgreSQL store, whose queue several cp-host nodes can share: its schema and health. The "
      "database is named by --store, else CP_HOST_STORE, else libpq's PG* variables.");
  cmd->require_subcommand(1);
  auto o = std::make_shared<DbOpts>();
  auto* migrate = cmd->add_subcommand(
      "migrate",
      "Apply the schema migrations the database lacks, each in its own transaction (two migrators at once "
      "take turns). Running it again changes nothing. Exit 0 done, 3 a migration failed (nothing of it "
      "kept), "
      "6 the database cannot be reached");
  auto* status = cmd->add_subcommand(
      "status",
      "The schema's version and pending migrations; on a current schema, the queue's items by state, the "
      "path locks held or expired, and every node with its last heartbeat and the attempts it holds. Exit 0 "
      "current, 1 migrations pending (or the schema is newer than this "
      "cp-host), 6 the database cannot be reached");
  for (auto* sub : {migrate, status}) {
    sub->add_option("--store", o->store,
                    "Connection string: postgres://USER[:PASSWORD]@HOST[:PORT]/DB or key=value");
    sub->add_flag("--json", o->json, "Machine-readable output");
  }
  migrate->callback([&run, o] { run = [o] { return run_db(*o, true); }; });
  status->callback([&run, o] { run = [o] { return run_db(*o, false); }; });
}

}  // namespace cp::cli
