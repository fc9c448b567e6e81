// What becomes of a run's change once it is proven: promote applies the bundle's artifacts/diff.patch onto
// a branch of the run's repository as one commit; reject discards the run's worktree. Only a run sealed
// with verdict success (approved, when its pack asks for approval) can be promoted, and each run is decided
// once. Promotion never touches a working tree: the commit is built in a private index from the branch tip
// (or the run's baseline commit for a new branch) and the branch ref is moved with a compare-and-swap, so a
// concurrent push to the branch makes the promotion fail rather than lose that push.
#pragma once

#include "control/actor.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace cp::control {

struct EvidenceResult {
  // from_run: asked from inside a run's process tree (control/run_origin.hpp); nothing was read or written.
  // unverified: the bundle does not verify (store/bundle_verify.hpp); nothing was decided.
  enum class Outcome { promoted, rejected, refused, unverified, not_found, from_run, error };
  Outcome outcome = Outcome::error;
  std::string message;      // one line; for `refused`, what is wrong and how to fix it
  nlohmann::json evidence;  // the manifest's `evidence` section, when decided
};

// Refused when: the run is not sealed success, it was already decided, the branch is checked out in a
// worktree (moving it would change files under someone), the name is not a valid branch, or the patch does
// not apply to the branch tip (git's reason is in the message).
EvidenceResult promote(const std::filesystem::path& root, const std::string& run_id,
                       const std::string& branch, const Actor& actor);

// The worktree of `repo` (its main one included) that has `branch` checked out; empty when none. What
// moves a branch without a working tree refuses one that is checked out: its files would no longer match.
std::string branch_checked_out_at(const std::filesystem::path& repo, const std::string& branch);

EvidenceResult reject_evidence(const std::filesystem::path& root, const std::string& run_id,
                               const Actor& actor);

}  // namespace cp::control
