#include "serve/worker_registry.hpp"

#include "core/clock.hpp"
#include "db/migrations.hpp"
#include "db/pg_connection.hpp"
#include "queue/queue_backend.hpp"

#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>

namespace cp::serve {

using nlohmann::json;

json to_json(const WorkerInfo& w) {
  json j{{"worker_id", w.worker_id},
         {"host", w.host},
         {"root", w.root},
         {"pid", w.pid},
         {"scheduler", w.scheduler},
         {"started_at", w.started_at},
         {"heartbeat_at", w.heartbeat_at},
         {"runs_held", w.runs_held},
         {"alive", w.alive}};
  if (!w.url.empty()) j["url"] = w.url;
  if (!w.stopped_at.empty()) j["stopped_at"] = w.stopped_at;
  return j;
}

std::string host_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) return {};
  return host;
}

std::string default_worker_id(const std::string& root) {
  std::string host = host_name();
  if (host.empty()) host = "node";
  std::string id;
  for (const char* p = host.c_str(); *p && id.size() < 100; ++p)
    id += (std::isalnum(static_cast<unsigned char>(*p)) || *p == '.' || *p == '-') ? *p : '-';
  if (id.empty() || !std::isalnum(static_cast<unsigned char>(id[0]))) id = "node" + id;
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08zx", std::hash<std::string>{}(root)&0xffffffff);
  return id + "-" + hash;
}

namespace {

// One node per root: the JSONL store has no other node to know of.
class LocalRegistry final : public WorkerRegistry {
 public:
  void join(const WorkerInfo& self) override {
    std::lock_guard<std::mutex> l(mu_);
    self_ = self;
    self_.started_at = self_.heartbeat_at = core::iso_from_ms(core::now_ms());
  }
  void beat(int runs_held) override {
    std::lock_guard<std::mutex> l(mu_);
    self_.runs_held = runs_held;
    self_.heartbeat_at = core::iso_from_ms(core::now_ms());
  }
  void leave() override {
    std::lock_guard<std::mutex> l(mu_);
    self_.stopped_at = core::iso_from_ms(core::now_ms());
  }
  bool displaced() const override { return false; }
  std::set<std::string> lost() override { return {}; }
  std::vector<WorkerInfo> list() override {
    std::lock_guard<std::mutex> l(mu_);
    WorkerInfo w = self_;
    w.alive = w.stopped_at.empty();
    return {w};
  }
  bool shared() const override { return false; }

 private:
  std::mutex mu_;
  WorkerInfo self_;
};

// cp_workers (migration 2). One connection, used under a mutex: beats come from one thread, reads from
// the scheduler and the API.
class PgRegistry final : public WorkerRegistry {
 public:
  PgRegistry(const std::string& store, std::string self_id) : conn_(store), id_(std::move(self_id)) {
    db::require_current_schema(conn_);
    incarnation_ = db::random_token();
  }
  void join(const WorkerInfo& self) override {
    run([&] {
      db::Transaction t(conn_);
      db::PgRows held = conn_.exec(
          "SELECT host, pid, " + kAlive + " FROM cp_workers WHERE worker_id = $1 FOR UPDATE", {id_});
      if (held.size() > 0 && held.text(0, 2) == "t") {
        // Alive by its heartbeat: refused, unless it is this machine's earlier process of this node, gone.
        const bool same_host = held.text(0, 0) == self.host;
        const pid_t pid = static_cast<pid_t>(held.integer(0, 1));
        const bool gone = same_host && pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
        if (!gone)
          throw WorkerIdInUse("worker id " + id_ + " is held by a live node (host " + held.text(0, 0) +
                              ", pid " + std::to_string(pid) +
                              "): give this node another --worker-id, or stop that one first");
      }
      conn_.exec(
          "INSERT INTO cp_workers (worker_id, host, root, pid, scheduler, url, lease_ms, incarnation) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
          "ON CONFLICT (worker_id) DO UPDATE SET host = $2, root = $3, pid = $4, scheduler = $5, url = $6, "
          "lease_ms = $7, incarnation = $8, started_at = now(), heartbeat_at = now(), stopped_at = NULL, "
          "runs_held = 0",
          {id_, self.host, self.root, std::to_string(self.pid), self.scheduler ? "t" : "f", self.url,
           std::to_string(self.lease_ms), incarnation_});
      t.commit();
    });
  }
  void beat(int runs_held) override {
    run([&] {
      db::PgRows r = conn_.exec(
          "UPDATE cp_workers SET heartbeat_at = now(), runs_held = $2, stopped_at = NULL "
          "WHERE worker_id = $1 AND incarnation = $3 RETURNING 1",
          {id_, std::to_string(runs_held), incarnation_});
      if (r.size() == 0 && !displaced_.exchange(true))
        std::fprintf(stderr,
                     "cp-host serve: another process took worker id %s: this node claims nothing more\n",
                     id_.c_str());
    });
  }
  bool displaced() const override { return displaced_.load(); }
  void leave() override {
    run([&] {
      conn_.exec(
          "UPDATE cp_workers SET stopped_at = now(), runs_held = 0 WHERE worker_id = $1 AND incarnation = $2",
          {id_, incarnation_});
    });
  }
  std::set<std::string> lost() override {
    std::set<std::string> out;
    run([&] {
      // The database's clock judges every node, each by its own lease: the nodes' clocks and TTLs may
      // disagree.
      db::PgRows r =
          conn_.exec("SELECT worker_id FROM cp_workers WHERE worker_id <> $1 AND NOT " + kAlive, {id_});
      for (int i = 0; i < r.size(); ++i) out.insert(r.text(i, 0));
    });
    return out;
  }
  std::vector<WorkerInfo> list() override {
    std::vector<WorkerInfo> out;
    run([&] {
      db::PgRows r =
          conn_.exec("SELECT worker_id, host, root, pid, scheduler, " + db::iso_utc_sql("started_at") + ", " +
                     db::iso_utc_sql("heartbeat_at") + ", " + db::iso_utc_sql("stopped_at") +
                     ", runs_held, url, " + kAlive + ", lease_ms FROM cp_workers ORDER BY worker_id");
      for (int i = 0; i < r.size(); ++i) {
        WorkerInfo w;
        w.worker_id = r.text(i, 0);
        w.host = r.text(i, 1);
        w.root = r.text(i, 2);
        w.pid = static_cast<int>(r.integer(i, 3));
        w.scheduler = r.text(i, 4) == "t";
        w.started_at = r.text(i, 5);
        w.heartbeat_at = r.text(i, 6);
        w.stopped_at = r.text(i, 7);
        w.runs_held = static_cast<int>(r.integer(i, 8));
        w.url = r.text(i, 9);
        w.alive = r.text(i, 10) == "t";
        w.lease_ms = r.integer(i, 11);
        out.push_back(std::move(w));
      }
    });
    return out;
  }
  bool shared() const override { return true; }

 private:
  // One try, and one more on a fresh connection when the first failed for the connection's sake.
  template <class Work>
  void run(Work&& work) {
    std::lock_guard<std::mutex> l(mu_);
    try {
      work();
    } catch (const db::DbError& e) {
      if (!e.transient()) throw;
      conn_.reconnect();
      work();
    }
  }

  // A node is alive while it has not stopped and its last heartbeat is younger than its own lease.
  inline static const std::string kAlive =
      "(stopped_at IS NULL AND heartbeat_at + lease_ms * interval '1 millisecond' >= now())";

  std::mutex mu_;
  db::PgConnection conn_;
  std::string id_;
  std::string incarnation_;  // this process: a beat that finds another's here knows it was displaced
  std::atomic<bool> displaced_{false};
};

}  // namespace

struct Heartbeat::State {
  WorkerRegistry& registry;
  std::chrono::milliseconds every;
  std::function<int()> runs_held;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;
};

Heartbeat::Heartbeat(WorkerRegistry& registry, std::chrono::milliseconds every,
                     std::function<int()> runs_held)
    : s_(new State{registry, every, std::move(runs_held), {}, {}, false, {}}) {
  s_->thread = std::thread([s = s_.get()] {
    std::unique_lock<std::mutex> l(s->mu);
    while (!s->stop) {
      l.unlock();
      try {
        s->registry.beat(s->runs_held ? s->runs_held() : 0);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "cp-host serve: heartbeat: %s\n", e.what());
      }
      l.lock();
      s->cv.wait_for(l, s->every, [s] { return s->stop; });
    }
  });
}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> l(s_->mu);
    s_->stop = true;
  }
  s_->cv.notify_all();
  s_->thread.join();
  try {
    s_->registry.leave();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cp-host serve: leaving the worker registry: %s\n", e.what());
  }
}

std::unique_ptr<WorkerRegistry> open_worker_registry(const std::string& worker_id) {
  queue::StoreChoice c = queue::configured_store();
  if (c.kind == "postgres") return std::make_unique<PgRegistry>(c.store, worker_id);
  return std::make_unique<LocalRegistry>();
}

}  // namespace cp::serve
