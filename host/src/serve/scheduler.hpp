// The scheduler of `cp-host serve`: takes eligible queue items in order (priority, then FIFO) and runs each
// as a child `cp-host run` process, within the global and per-pack concurrency limits. A child is named
// before it starts (run id and attempt written to the queue first), dies with serve (PDEATHSIG), and its
// outcome is read back from its sealed bundle. So after a kill -9 of serve, the restart finds each
// interrupted item's attempt in the queue and its bundle on disk, and ends the attempt exactly once.
//
// Chains (chain/chain_queue.hpp): a chain step's child starts from the chain branch (`run --chain`); before
// a step's attempt is recorded as ended its passed change is carried onto the chain branch; every tick,
// before anything is claimed, decided approvals are settled and ended chains have their remaining steps
// cancelled; a chain's own item is not a child: taking it seals the chain bundle (chain/chain_driver.hpp).
//
// Path locks: an item is claimed only together with the locks on its allowed_paths (queue/path_locks.hpp),
// so an item whose paths a running run holds waits (its waiting_on names the lock and the holder) while
// other items go ahead. The locks go when the attempt ends (here, on the child's exit; at restart, by
// recover()) or the run is sealed (a seal observer, queue/locks_on_seal.hpp). While a child lives its
// locks are renewed, so only a leaked lock (its claimer gone) reaches its TTL, and is then reaped.
#pragma once

#include "queue/queue_backend.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cp::queue {
class QueueService;
}
namespace cp::chain {
class QueuedChainDriver;
}

namespace cp::serve {

class ExitWatch;

class WorkerRegistry;
class RunMirror;

struct SchedulerOptions {
  std::filesystem::path root, plugins_dir;
  std::filesystem::path cp_host;  // the executable run as the child (default: this process's own)
  int concurrency = 2;
  std::chrono::milliseconds tick{50};  // how often the queue is looked at for other processes' changes
  // With a shared store and nothing running: how often the queue is looked at when no change is announced
  // (a submission anywhere wakes the scheduler at once). 0: every tick.
  std::chrono::milliseconds idle_tick{0};
  std::function<void(const std::string& run_id)> on_run_done;  // called on the scheduler thread
  std::vector<std::filesystem::path> hidden;  // passed to each run as --hide (the token file)
  // How long a claim's path locks last unless renewed; 0: each item's own (its wall-time budget plus a
  // margin). A live child's locks are renewed when half of this is left.
  std::chrono::seconds lock_ttl{0};
  // This node's id, recorded with each attempt it claims, and the registry of the nodes sharing the queue
  // (null: this node alone). With a shared registry, recover() ends only this node's attempts, and the
  // attempts of nodes whose heartbeat lapsed for lease_ttl are queued again (queue::requeue_lost).
  std::string worker_id;
  WorkerRegistry* registry = nullptr;
  std::chrono::milliseconds lease_ttl{30000};
  // With a shared store: each child's run is copied into the database as it goes (its events, then its
  // sealed bundle before its attempt's end is recorded), under the attempt's fence. Null: not copied.
  RunMirror* mirror = nullptr;
};

class Scheduler {
 public:
  Scheduler(queue::QueueService& q, SchedulerOptions o);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Ends the attempts a dead host left claimed or running (its bundle's verdict when it was sealed, else
  // error/host_interrupted, then the retry policy). Call once, before start(), holding the serve lock.
  // Returns how many attempts it ended.
  int recover();

  void start();
  // Stops taking items; running children get SIGTERM (they seal `cancelled`), are waited for, and their
  // attempts end as error "serve stopped" under the retry policy.
  void stop();
  void poke();  // look at the queue now (after a submit or cancel in this process)

  struct Stats {
    int running = 0;
    long long started_total = 0, finished_total = 0, spawn_failures = 0;
  };
  Stats stats() const;

 private:
  struct Child {
    pid_t pid = -1;
    std::string item_id, run_id;
    int attempt = 0;
    bool term_sent = false;
    bool fenced = false;  // the attempt is no longer this node's (its lease was lost): its end is not ours
    int64_t lock_ttl_ms = 0, locks_expire_ms = 0;  // 0: the attempt holds no lock (any more)
  };
  void loop();
  void wake_on_changes();  // pokes the scheduler at each change the shared queue announces
  void tick_once();
  void reap();
  void keep_locks(int64_t now);
  // Stops children whose attempt the queue no longer gives this node; queues again the attempts of nodes
  // whose lease lapsed.
  void fence_and_requeue(const queue::QueueState& st, int64_t now);
  void finish(const Child& c, int wait_status);
  // The queue's finish of an attempt; kept and tried again at the next tick when the store fails.
  void record_end(const std::string& item_id, int attempt, const queue::AttemptEnd& end);
  // `command`: what the child runs, after `cp-host` (`run CONTRACT`, `replay RUN`, `run --from-run RUN`).
  pid_t spawn(const Child& c, const std::vector<std::string>& command, const std::string& repo);

  queue::QueueService& q_;
  SchedulerOptions o_;
  std::unique_ptr<chain::QueuedChainDriver> chains_;  // used by the scheduler thread (and recover())
  std::thread thread_, waker_;
  std::unique_ptr<ExitWatch> exits_;  // pokes the loop when a child exits (made in start())
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, poked_ = false;
  std::map<pid_t, Child> children_;  // touched only by the scheduler thread, except stats()
  Stats stats_;
  int64_t next_reap_ms_ = 0;   // when expired locks are looked for next
  int64_t next_lease_ms_ = 0;  // when lapsed leases are looked for next
  struct Unrecorded {
    std::string item_id;
    int attempt;
    queue::AttemptEnd end;
  };
  std::vector<Unrecorded> unrecorded_;  // attempt ends the store refused to take yet (scheduler thread)
};

// What the child's exit said, for an attempt whose bundle has no verdict: {status, reason}.
std::pair<std::string, std::string> outcome_from_exit(int wait_status);

}  // namespace cp::serve
