#include "control/run_rollback.hpp"

#include "control/evidence.hpp"
#include "control/run_copy.hpp"
#include "control/run_origin.hpp"
#include "core/runtime_paths.hpp"
#include "log/log_lanes.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/run_index.hpp"

#include <stdlib.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;
using RollbackOutcome = RollbackResult::Outcome;

namespace {

RollbackResult result(RollbackOutcome o, std::string code, std::string message, json record = nullptr) {
  return {o, std::move(code), std::move(message), std::move(record)};
}

RollbackResult refused(std::string code, std::string message, json record = nullptr) {
  return result(RollbackOutcome::refused, std::move(code), std::move(message), std::move(record));
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The run's record and the re-seal: the manifest's `rollback` section, a RUN_ROLLED_BACK event carrying
// the seal, and a governance line.
void record(store::Bundle& b, const json& rollback, bool worktree_removed) {
  json patch{{"rollback", rollback}};
  if (worktree_removed) patch["worktree_kept"] = false;
  b.seal("RUN_ROLLED_BACK", rollback, patch);
  log::governance(b.run_id(), "rollback",
                  "run " + b.run_id() + " rolled back (" + rollback.value("action", "") + ") by " +
                      rollback.value("by", ""),
                  rollback, true);
}

// A revert of the promotion commit on its branch, built in a private index and moved in with a
// compare-and-swap. See run_rollback.hpp.
RollbackResult revert_promotion(store::Bundle& b, const json& m, const Actor& actor) {
  const std::string run_id = b.run_id();
  const json& ev = m["evidence"];
  const std::string branch = ev.value("branch", ""), promoted = ev.value("commit", ""),
                    parent = ev.value("parent", "");
  fs::path repo = m.value("repo", "");
  if (branch.empty() || promoted.empty() || parent.empty())
    return refused("nothing_to_roll_back",
                   "run " + run_id + "'s promotion record names no branch, commit and parent to revert");
  std::error_code ec;
  if (repo.empty() || !fs::is_directory(repo, ec))
    return refused("repo_unusable", "run " + run_id + "'s repository " + repo.string() + " is not there");
  std::string holder = branch_checked_out_at(repo, branch);
  if (!holder.empty())
    return refused("branch_checked_out",
                   "branch '" + branch + "' is checked out at " + holder +
                       "; a rollback never changes a checked-out tree. Check out another branch there and "
                       "roll back again, or revert " +
                       promoted.substr(0, 12) + " there yourself (git revert " + promoted.substr(0, 12) +
                       ")");
  std::string tip;
  try {
    tip = trim(run::run_git(repo, {"rev-parse", "--verify", "--quiet", "refs/heads/" + branch + "^{commit}"},
                            "resolve the branch"));
  } catch (const run::WorkspaceError&) {
    return refused("not_on_branch", "branch '" + branch + "' no longer exists in " + repo.string() +
                                        ": the promotion commit " + promoted.substr(0, 12) +
                                        " is on no branch to revert it from");
  }
  try {
    run::run_git(repo, {"merge-base", "--is-ancestor", promoted, tip}, "find the promotion on the branch");
  } catch (const run::WorkspaceError&) {
    return refused("not_on_branch", "commit " + promoted.substr(0, 12) + " is no longer on branch '" +
                                        branch + "' (it was reset or rewritten): nothing of run " + run_id +
                                        " is there to revert");
  }
  std::string tree;
  if (tip == promoted) {
    // Nothing came after: the revert's tree is exactly the tree before the promotion.
    tree = trim(run::run_git(repo, {"rev-parse", "--verify", parent + "^{tree}"}, "read the tree"));
  } else {
    // Later commits sit on top: take the promotion's change out of the tip's tree, in a private index
    // (the user's index and files are never touched) from a private patch file.
    // A folder of our own (mkdtemp: unpredictable, mode 0700): names another user could guess and plant
    // first in the shared temp folder would let them break or steer the revert.
    std::string tmpl = (fs::temp_directory_path() / "cp-rollback-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("cannot make a private temporary folder for the revert: " +
                               std::string(std::strerror(errno)));
    struct Cleanup {
      fs::path dir;
      ~Cleanup() {
        std::error_code e;
        fs::remove_all(dir, e);
      }
    } cleanup{tmpl};
    fs::path index = cleanup.dir / "index", patch = cleanup.dir / "change.patch";
    std::vector<std::string> env{"GIT_INDEX_FILE=" + index.string()};
    std::string diff = run::run_git(
        repo, {"diff-tree", "-p", "--binary", "--full-index", "--no-renames", parent, promoted, "--"},
        "read the promotion's change");
    store::write_atomic(patch, diff);
    run::run_git(repo, {"read-tree", tip}, "read the branch tree", env);
    try {
      run::run_git(repo, {"apply", "-R", "--cached", "--binary", "--whitespace=nowarn", patch.string()},
                   "take the change out", env);
    } catch (const run::WorkspaceError& e) {
      return refused("does_not_revert",
                     "the change of run " + run_id + " does not come out of '" + branch + "' at " +
                         tip.substr(0, 12) + " cleanly: later commits changed the same lines (" + e.what() +
                         "); revert " + promoted.substr(0, 12) + " by hand and resolve the conflict");
    }
    tree = trim(run::run_git(repo, {"write-tree"}, "write the tree", env));
  }
  std::string tip_tree =
      trim(run::run_git(repo, {"rev-parse", "--verify", tip + "^{tree}"}, "read the tree"));
  if (tree == tip_tree)
    return refused("nothing_to_roll_back", "branch '" + branch + "' at " + tip.substr(0, 12) +
                                               " already holds none of run " + run_id + "'s change");
  std::string who = actor.by + " (" + actor.by_kind + ", " + actor.how + ")";
  std::string msg = "Roll back run " + run_id + " (task " + m.value("task_id", "") + ")\n\n" + actor.reason +
                    "\n\nThis reverts commit " + promoted + ".\n\nRolled-back-by: " + who +
                    "\nRun-Id: " + run_id + "\nContract-Sha256: " + m.value("contract_sha256", "") + "\n";
  std::vector<std::string> ident{"GIT_AUTHOR_NAME=cp-host", "GIT_AUTHOR_EMAIL=cp-host@localhost",
                                 "GIT_COMMITTER_NAME=cp-host", "GIT_COMMITTER_EMAIL=cp-host@localhost"};
  std::string commit =
      trim(run::run_git(repo, {"commit-tree", tree, "-p", tip, "-m", msg}, "make the revert commit", ident));
  try {
    run::run_git(repo,
                 {"update-ref", "-m", "cp-host rollback " + run_id, "refs/heads/" + branch, commit, tip},
                 "move the branch");
  } catch (const run::WorkspaceError& e) {
    return refused("branch_moved", "branch '" + branch + "' moved while the revert was made (" + e.what() +
                                       "); nothing changed, try again");
  }
  json rec = actor_record(actor);
  rec["action"] = "reverted";
  rec["branch"] = branch;
  rec["reverted_commit"] = promoted;
  rec["commit"] = commit;
  rec["parent"] = tip;
  record(b, rec, false);
  return result(RollbackOutcome::rolled_back, "",
                "run " + run_id + " rolled back: " + commit.substr(0, 12) + " on " + branch + " reverts " +
                    promoted.substr(0, 12),
                rec);
}

// The kept worktree of a run whose change was never promoted, removed with its registration.
RollbackResult discard_worktree(const fs::path& root, store::Bundle& b, const json& m, const Actor& actor) {
  const std::string run_id = b.run_id();
  fs::path wt = m.value("worktree", "");
  // Only the folder cp-host made for this run is ever removed, whatever the manifest says.
  // Compared by their folders' real paths (the root may be named through a link), never by following the
  // worktree itself, which may have become a link.
  auto real = [](const fs::path& p) {
    std::error_code e;
    fs::path abs = fs::absolute(p).lexically_normal();
    return fs::weakly_canonical(abs.parent_path(), e) / abs.filename();
  };
  fs::path expected = fs::absolute(wt).lexically_normal();
  if (wt.empty() || real(wt) != real(core::worktrees_dir(root) / run_id))
    return refused("nothing_to_roll_back",
                   "run " + run_id + "'s worktree " + wt.string() + " is not the one cp-host made for it (" +
                       (core::worktrees_dir(root) / run_id).string() + "); nothing is removed");
  std::error_code ec;
  auto st = fs::symlink_status(expected, ec);
  if (!fs::exists(st))
    return refused("nothing_to_roll_back",
                   "run " + run_id + "'s kept worktree " + expected.string() + " is already gone");
  bool removed = false;
  if (fs::is_symlink(st)) {
    // Not what cp-host made: the link goes, never what it points at.
    removed = fs::remove(expected, ec);
    run::Workspace::prune(run::Workspace::owner_git_dir(expected));
  } else {
    removed = run::Workspace::remove(m.value("repo", ""), expected);
  }
  if (!removed)
    return result(RollbackOutcome::error, "",
                  "cannot remove run " + run_id + "'s worktree " + expected.string());
  json rec = actor_record(actor);
  rec["action"] = "worktree_discarded";
  rec["worktree"] = expected.string();
  record(b, rec, true);
  return result(RollbackOutcome::rolled_back, "", "run " + run_id + " rolled back: its worktree is removed",
                rec);
}

}  // namespace

const char* outcome_name(RollbackResult::Outcome o) {
  switch (o) {
    case RollbackOutcome::rolled_back:
      return "rolled_back";
    case RollbackOutcome::refused:
      return "refused";
    case RollbackOutcome::unverified:
      return "unverified";
    case RollbackOutcome::not_found:
      return "not_found";
    case RollbackOutcome::invalid:
      return "invalid";
    case RollbackOutcome::from_run:
      return "from_run";
    case RollbackOutcome::error:
      break;
  }
  return "error";
}

RollbackResult rollback_run(const fs::path& root, const std::string& run_id, const Actor& actor) {
  if (std::string why = refusal_from_run(actor); !why.empty())
    return result(RollbackOutcome::from_run, "", why);
  if (actor.reason.empty())
    return result(RollbackOutcome::invalid, "",
                  "a rollback needs a reason (it is recorded, and in the revert commit's message)");
  try {
    auto dir = store::find_run(root, run_id);
    if (!dir) return result(RollbackOutcome::not_found, "", "no run " + run_id);
    if (std::string why = copy_refusal(root, run_id); !why.empty()) return refused("elsewhere", why);
    // Verify before acting: what is undone must be what was sealed (its promotion record above all).
    if (std::string why = store::refusal_to_act(*dir); !why.empty())
      return result(RollbackOutcome::unverified, "", why);
    auto b = store::Bundle::open(root, run_id);
    const json m = b->manifest();
    if (m.contains("rollback"))
      return refused("already_rolled_back",
                     "run " + run_id + " was already rolled back by " + m["rollback"].value("by", "?") +
                         " at " + m["rollback"].value("at", "?"),
                     m["rollback"]);
    if (m.value("status", "") != "sealed")
      return refused("not_sealed", "run " + run_id + " is " + m.value("status", "?") +
                                       (m.value("status", "") == "awaiting_approval"
                                            ? ": decide it first (reject discards its worktree)"
                                            : ": only a sealed run is rolled back"));
    const json ev = m.value("evidence", json::object());
    if (ev.value("decision", "") == "promoted") return revert_promotion(*b, m, actor);
    if (ev.value("decision", "") == "rejected")
      return refused("nothing_to_roll_back", "run " + run_id + "'s change was rejected by " +
                                                 ev.value("by", "?") +
                                                 " and its worktree removed: nothing is left to roll back");
    if (m.value("worktree_kept", false) && m.contains("worktree") && m["worktree"].is_string())
      return discard_worktree(root, *b, m, actor);
    return refused("nothing_to_roll_back", "run " + run_id +
                                               " was never promoted and kept no worktree: it changed nothing "
                                               "outside its bundle");
  } catch (const std::exception& e) {
    return result(RollbackOutcome::error, "", e.what());
  }
}

}  // namespace cp::control
