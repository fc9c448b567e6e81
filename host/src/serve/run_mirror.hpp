// A worker's runs, copied into the shared store as they happen (db/run_store.hpp): a thread follows each
// run this node's scheduler started — its events.jsonl, whole lines only, in order, and its manifest — and
// pushes what is new every quarter second; when the run's process has ended, its sealed bundle goes too.
// Every push carries the attempt's fence, so once this node's lease is lost (it was paused, or cut off)
// the store refuses its appends and its seal, and the run is followed no more. The local bundle stays the
// run's own record; the store's copy is what every other node lists, streams and serves.
#pragma once

#include "db/run_store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace cp::serve {

class RunMirror {
 public:
  RunMirror(std::filesystem::path root, std::string conninfo, std::string worker_id);
  ~RunMirror();
  RunMirror(const RunMirror&) = delete;
  RunMirror& operator=(const RunMirror&) = delete;

  // Follow a run the scheduler just started for (item, attempt).
  void track(const std::string& run_id, const std::string& item_id, int attempt);
  // The run's process ended: push the rest and, when the bundle is sealed, the bundle. Waits up to `wait`
  // for that to be stored or refused (the thread goes on trying after that). True when the store took it.
  bool finish(const std::string& run_id, std::chrono::milliseconds wait);

  struct Stats {
    long long events = 0, sealed = 0, refused = 0, failures = 0;
  };
  Stats stats() const;

 private:
  struct Run {
    db::RunFence fence;
    int64_t stored = 0;    // events the store holds
    uint64_t offset = 0;   // bytes of events.jsonl behind `stored` lines (0 with stored > 0: unknown)
    std::string manifest;  // last pushed
    bool ended = false;    // the process is gone: push the seal once the bundle has one
    bool done = false;     // stored with its seal, or refused: nothing more to do
    bool stored_ok = false;
    bool orphan = false;  // finish() stopped waiting: forgotten once done
    int refusals = 0;     // writes of it the store refused in a row (not connection failures)
  };
  enum class Sync { ok, store_away, refused_once };
  void loop();
  void resume();  // takes up the runs an earlier process of this node left unpushed
  // One push of `r` (and its seal once due). store_away: the connection failed, tried again later.
  Sync sync(const std::string& run_id, Run& r);
  Sync given_up_after(const std::string& run_id, Run& r, const std::string& why);
  void refused(const std::string& run_id, Run& r);
  void connect();

  std::filesystem::path root_;
  std::string conninfo_, worker_id_;
  std::unique_ptr<db::PgConnection> conn_;  // the thread's own
  mutable std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::map<std::string, Run> runs_;
  Stats stats_;
  bool stop_ = false, poked_ = false;
  bool failing_ = false;  // the last round could not reach the store
  std::thread thread_;
};

}  // namespace cp::serve
