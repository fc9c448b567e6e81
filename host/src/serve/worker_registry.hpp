// The nodes serving one queue, and their leases. With the PostgreSQL store every node (a worker, or an
// API-only node started with --no-scheduler) has a row in cp_workers that its heartbeat keeps fresh; an
// attempt's lease is its node's heartbeat, so a node that stops beating (killed, partitioned, paused)
// loses every attempt it holds at once, and any other node queues them again (queue::requeue_lost). With
// the JSONL store there is one node per root: the registry knows only itself.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace cp::serve {

struct WorkerInfo {
  std::string worker_id, host, root, url;
  int pid = 0;
  bool scheduler = false;
  std::string started_at, heartbeat_at, stopped_at;  // ISO-8601 UTC; stopped_at empty while it serves
  int runs_held = 0;
  int64_t lease_ms = 30000;  // its own --lease-ttl: it counts as lost once its heartbeat is this old
  bool alive = false;        // its heartbeat is younger than its lease and it has not stopped
};
nlohmann::json to_json(const WorkerInfo& w);

// join() refused: a live node holds the id.
class WorkerIdInUse : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class WorkerRegistry {
 public:
  virtual ~WorkerRegistry() = default;
  // Records this node as serving (again, after a restart with the same id). Throws WorkerIdInUse when
  // a live node holds that id already (another process, or another machine): two nodes of one id would
  // take each other's attempts.
  virtual void join(const WorkerInfo& self) = 0;
  // This node is alive and holds `runs_held` runs. Throws on a store error (the caller retries). When
  // another process took this node's id meanwhile, displaced() turns true.
  virtual void beat(int runs_held) = 0;
  // Another process holds this node's id now: this one must claim nothing more.
  virtual bool displaced() const = 0;
  // This node stops serving (a clean stop): it holds nothing any more.
  virtual void leave() = 0;
  // Nodes whose lease lapsed: no heartbeat for their own lease TTL (by the database's clock), or stopped.
  // Never this node.
  virtual std::set<std::string> lost() = 0;
  // Every node known, alive or not.
  virtual std::vector<WorkerInfo> list() = 0;
  // Whether several nodes share the queue (a database): then each node recovers only its own attempts.
  virtual bool shared() const = 0;
};

// Beats for this node on a thread of its own, every `every`, until destroyed (then leave()). A beat
// that fails is retried at the next; `runs_held` says how many runs the node holds at each beat.
class Heartbeat {
 public:
  Heartbeat(WorkerRegistry& registry, std::chrono::milliseconds every, std::function<int()> runs_held);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The registry of the store CP_HOST_STORE names (queue::configured_store()): in PostgreSQL, or this node
// alone.
std::unique_ptr<WorkerRegistry> open_worker_registry(const std::string& worker_id);

// This machine's host name ("" when it cannot be read).
std::string host_name();

// A default node id: the host name and a short hash of the runtime root, stable across restarts.
std::string default_worker_id(const std::string& root);

}  // namespace cp::serve
