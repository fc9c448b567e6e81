// Running an earlier run's contract again, through the queue: what `POST /api/runs/{id}/replay`,
// `POST /api/queue/from-run/{id}` (and its preview) and `cp-host queue replay|from-run` do.
//
// Both run the compiled contract the earlier run's bundle holds (contract.json, checked against the
// contract_sha256 its sealed manifest recorded), so the new run records that same contract_sha256 whatever
// the contract file, the pack or the policies say today. They differ in where the new run starts:
//   replay    from the earlier run's baseline commit (`cp-host replay`: the manifest records replay_of, and
//             the compare report of the two runs is written into the new run);
//   from_run  from the contract's rollback.baseline_ref as it resolves when the item starts (the branch as
//             it is then: `cp-host run --from-run`; the manifest records from_run).
// The queue item names the earlier run and points at its contract.json; the earlier bundle is verified when
// the item is queued and again when it starts. Nothing is written by a preview.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::queue {
class QueueService;
}

namespace cp::control {

enum class RequeueMode { replay, from_run };
const char* mode_name(RequeueMode m);

struct RequeueRequest {
  std::string run_id;
  RequeueMode mode = RequeueMode::from_run;
  std::filesystem::path repo;  // empty: the earlier run's repository
  // When set, the repository must be one of these folders or under one (a server's --repo and
  // --allow-repo): a run made elsewhere is not run again through a server not told it may run there.
  std::optional<std::vector<std::filesystem::path>> allowed_repos;
  std::optional<int> priority;  // default: the contract's runtime_options.priority, else 5
  std::vector<std::string> depends_on;
  std::string run_after, deadline, start_by;  // ISO-8601 UTC or empty
  std::string submitted_by;
};

struct RequeueResult {
  // not_found: no such run; unverified: its bundle does not verify; refused: it cannot be run again as
  // asked (a chain, a contract that no longer matches its sha256, a repository or baseline that cannot be
  // used; `message` says which); invalid: a bad option (time, priority); conflict: a dependency the queue
  // does not hold; repo_not_allowed: the repository is outside allowed_repos.
  enum class Outcome {
    queued,
    previewed,
    not_found,
    unverified,
    refused,
    invalid,
    conflict,
    repo_not_allowed,
    error
  };
  Outcome outcome = Outcome::error;
  std::string message;
  nlohmann::json body;  // queued: the item as the queue lists it; previewed: the preview
};

// Checks the earlier run and queues the item. The repository is the request's or the earlier run's.
RequeueResult requeue_run(queue::QueueService& queue, const std::filesystem::path& root,
                          const RequeueRequest& req);

// What requeue_run would queue, and what that run would be, without queueing: {"mode", "source_run",
// "task_id", "contract_sha256", "runner", "pack", "repo", "baseline_ref", "baseline_commit", "plan"} with
// `plan` the execution_plan_report (control/intake_preview.hpp) of the compiled contract. Loads the
// plugins of `plugins_dir` as a run would.
RequeueResult preview_requeue(const std::filesystem::path& root, const std::filesystem::path& plugins_dir,
                              const RequeueRequest& req);

}  // namespace cp::control
