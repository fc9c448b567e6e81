#include "serve/worker_registry.hpp"

#include "core/clock.hpp"
#include "db/migrations.hpp"
#include "db/pg_connection.hpp"
#include "queue/queue_backend.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

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

std::string default_worker_id(const std::string& root) {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "node");
  std::string id;
  for (const char* p = host; *p && id.size() < 100; ++p)
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
  std::set<std::string> lost(std::chrono::milliseconds) override { return {}; }
  std::vector<WorkerInfo> list(std::chrono::milliseconds) override {
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

const char* kIso = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

std::string iso(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', " + kIso + ")";
}

// cp_workers (migration 2). One connection, used under a mutex: beats come from one thread, reads from
// the scheduler and the API.
class PgRegistry final : public WorkerRegistry {
 public:
  PgRegistry(const std::string& store, std::string self_id) : conn_(store), id_(std::move(self_id)) {
    db::require_current_schema(conn_);
  }
  void join(const WorkerInfo& self) override {
    run([&] {
      conn_.exec(
          "INSERT INTO cp_workers (worker_id, host, root, pid, scheduler, url) VALUES ($1, $2, $3, $4, $5, "
          "$6) "
          "ON CONFLICT (worker_id) DO UPDATE SET host = $2, root = $3, pid = $4, scheduler = $5, url = $6, "
          "started_at = now(), heartbeat_at = now(), stopped_at = NULL, runs_held = 0",
          {id_, self.host, self.root, std::to_string(self.pid), self.scheduler ? "t" : "f", self.url});
    });
  }
  void beat(int runs_held) override {
    run([&] {
      conn_.exec(
          "UPDATE cp_workers SET heartbeat_at = now(), runs_held = $2, stopped_at = NULL WHERE worker_id = "
          "$1",
          {id_, std::to_string(runs_held)});
    });
  }
  void leave() override {
    run([&] {
      conn_.exec("UPDATE cp_workers SET stopped_at = now(), runs_held = 0 WHERE worker_id = $1", {id_});
    });
  }
  std::set<std::string> lost(std::chrono::milliseconds ttl) override {
    std::set<std::string> out;
    run([&] {
      // The database's clock judges every node: the nodes' own clocks may disagree.
      db::PgRows r = conn_.exec(
          "SELECT worker_id FROM cp_workers WHERE worker_id <> $1 AND (stopped_at IS NOT NULL OR "
          "heartbeat_at < now() - make_interval(secs => $2::double precision / 1000))",
          {id_, std::to_string(ttl.count())});
      for (int i = 0; i < r.size(); ++i) out.insert(r.text(i, 0));
    });
    return out;
  }
  std::vector<WorkerInfo> list(std::chrono::milliseconds ttl) override {
    std::vector<WorkerInfo> out;
    run([&] {
      db::PgRows r = conn_.exec("SELECT worker_id, host, root, pid, scheduler, " + iso("started_at") + ", " +
                                    iso("heartbeat_at") + ", " + iso("stopped_at") +
                                    ", runs_held, url, "
                                    "(stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => "
                                    "$1::double precision / 1000)) "
                                    "FROM cp_workers ORDER BY worker_id",
                                {std::to_string(ttl.count())});
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

  std::mutex mu_;
  db::PgConnection conn_;
  std::string id_;
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
