// Rolling back a sealed run: undoing what it left behind, in one of two ways, and recording it in the
// bundle (a RUN_ROLLED_BACK event that re-seals it, the manifest's `rollback` section, the governance log).
//
//  - A promoted run (control/evidence.hpp: its change is commit C on branch B): a revert commit is added on
//    top of B's tip whose tree is the tip's with C's change taken out (when C is still the tip, exactly C's
//    parent's tree). It is built without any working tree: a private index (GIT_INDEX_FILE) read from the
//    tip, C's diff applied in reverse into it (`git apply -R --cached`), write-tree, commit-tree. B then
//    moves with `git update-ref refs/heads/B NEW TIP`, a compare-and-swap: a push to B in between makes the
//    rollback fail instead of being lost. Refused when B is checked out in any worktree of the repository
//    (its files, index and HEAD are never touched), when C is no longer on B, and when C's change does not
//    come out cleanly (later commits changed the same lines).
//  - A run whose worktree was kept and whose change was not promoted: the worktree is discarded (`git
//    worktree remove`, its registration with it). Run worktrees are detached: there is no branch of the
//    run's to delete, and no branch is ever deleted.
//
// Refused, with nothing changed, for a run that is not sealed, was already rolled back, or has nothing to
// roll back (never promoted and no worktree kept, or its evidence rejected); for a bundle that does not
// verify; without a reason; and from inside a run's process tree (control/run_origin.hpp), like every
// decision about a run.
#pragma once

#include "control/actor.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace cp::control {

struct RollbackResult {
  enum class Outcome { rolled_back, refused, unverified, not_found, invalid, from_run, error };
  Outcome outcome = Outcome::error;
  // For `refused`: not_sealed | already_rolled_back | nothing_to_roll_back | branch_checked_out |
  // branch_moved | not_on_branch | does_not_revert | repo_unusable.
  std::string code;
  std::string message;      // one line: what happened, or what is wrong and how to fix it
  nlohmann::json rollback;  // the manifest's `rollback` section, when rolled back (or already)
};

RollbackResult rollback_run(const std::filesystem::path& root, const std::string& run_id, const Actor& actor);

const char* outcome_name(RollbackResult::Outcome o);

}  // namespace cp::control
