// What runs a queued chain (chain_queue.hpp) besides the queue itself: serve's scheduler calls the driver
// around the steps' items, and `cp-host run --chain` asks where a step starts.
//  - a step's run starts from the chain branch's head (its baseline) and records the chain link;
//  - before a step's attempt is recorded as ended, a passed task step's change is committed onto the chain
//    branch (a change that cannot be carried ends the attempt as error): nothing that waits for the step
//    can start before its change is there;
//  - every scheduler tick, before anything is claimed: a step whose run was approved has its change carried
//    and its item settled success (rejected or past its deadline: settled denied); a chain that ended (a
//    failure without continue_on_fail, a missed quorum, a cancel) has its steps that have not started
//    cancelled and its waiting approvals denied by rule;
//  - when the scheduler takes the chain's own item (every step ended), the chain bundle is written from
//    what the queue and the steps' runs say, and sealed as `cp-host chain run` seals one.
// All of it is idempotent: a restart (kill -9 included) repeats what was cut short and nothing twice.
#pragma once

#include "queue/queue_backend.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cp::chain {

// Where `cp-host run --chain <chain run id>` for queue item `item_id` starts.
struct StepStart {
  bool ok = false;
  std::string error;  // !ok: why the step cannot start (no such chain, not one of its items)
  std::string
      baseline_commit;        // the chain branch's head, or the chain's first commit before any step moved it
  nlohmann::json chain_link;  // {run_id, step_id, role}: the run's manifest `chain`
};
StepStart queued_step_start(const std::filesystem::path& root, const std::string& chain_run_id,
                            const std::string& item_id);

class QueuedChainDriver {
 public:
  explicit QueuedChainDriver(std::filesystem::path root);

  // What `cp-host run CONTRACT` of `item` gets on top of the usual arguments: ["--chain", <its chain>] for
  // a chain step, nothing for any other item.
  static std::vector<std::string> step_arguments(const queue::QueueItem& item);
  static bool is_chain_item(const queue::QueueItem& item);

  // The end of an attempt of `item` as it will be recorded (call before QueueBackend::finish): a chain
  // step's passed task run has its change carried onto the chain branch first.
  queue::AttemptEnd on_attempt_end(const queue::QueueItem& item, queue::AttemptEnd end);

  // Settles decided approvals and ends the chains that ended (see above). Returns how many queue changes
  // it made. Throws nothing: a chain it cannot advance now is tried again at the next call.
  int advance(queue::QueueBackend& queue);

  // The chain item `item` was claimed: writes and seals its chain bundle (or reads the one a crash left
  // sealed). Returns the end of the item's attempt: the chain's verdict.
  queue::AttemptEnd seal(const queue::QueueItem& item, queue::QueueBackend& queue);

 private:
  const nlohmann::json* record(const std::string& run_id);

  std::filesystem::path root_;
  std::map<std::string, nlohmann::json> records_;  // records never change once written
  int64_t next_decisions_ms_ = 0;                  // when the approvals' runs are read next
  uint64_t seen_version_ = 0;                      // the queue as advance() last judged it
  bool seen_any_ = false;
};

}  // namespace cp::chain
