// Releasing path locks by hand (an admin through POST /api/locks/release, an OS user through `cp-host locks
// release`) and by their TTL: the lock goes from the queue (QueueBackend::release_locks), and the release
// is recorded where audits look: a PATH_LOCK_RELEASED host event (store/host_events.hpp) and a line in the
// governance log lane. The run that held the lock goes on; whoever releases takes that risk, and says why.
#pragma once

#include "control/actor.hpp"
#include "queue/path_locks.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cp::queue {
class QueueBackend;
}

namespace cp::control {

// What to release: one lock by id, or the locks of a run (only `path` when given).
struct LockReleaseAsk {
  std::string lock_id;
  std::string run_id, path;
  std::string reason;  // required
};

struct LockReleaseResult {
  enum class Outcome {
    released,
    invalid,         // the ask names no lock the way it must (`pointer` says which field)
    reason_missing,  // no reason given
    not_found,       // no held lock matches
  } outcome = Outcome::invalid;
  std::string message;
  std::string pointer;  // invalid, reason_missing: the JSON pointer of the field at fault
  std::vector<queue::PathLock> released;
  nlohmann::json event;  // released: the host event as written
};

// Checks the ask, releases the locks it names, records the host event and the governance line.
// Throws std::runtime_error when the release happened but its host event could not be written.
LockReleaseResult force_release_locks(const std::filesystem::path& root, queue::QueueBackend& backend,
                                      const LockReleaseAsk& ask, const Actor& who);

// Releases the locks whose TTL passed by `now` (0: the clock) and records each release as above, by
// cp-host (how "expired"). Returns them.
std::vector<queue::PathLock> reap_expired_locks(const std::filesystem::path& root,
                                                queue::QueueBackend& backend, int64_t now = 0);

}  // namespace cp::control
