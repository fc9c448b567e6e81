#include "control/evidence.hpp"

#include "control/run_copy.hpp"
#include "control/run_origin.hpp"
#include "log/log_lanes.hpp"
#include "log/logger.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/run_index.hpp"

#include <unistd.h>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;
using EvidenceOutcome = EvidenceResult::Outcome;

namespace {

EvidenceResult result(EvidenceOutcome o, std::string message, json evidence = nullptr) {
  return {o, std::move(message), std::move(evidence)};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string branch_checked_out_at(const fs::path& repo, const std::string& branch) {
  std::string list = run::run_git(repo, {"worktree", "list", "--porcelain"}, "list worktrees");
  std::string path;
  size_t i = 0;
  while (i < list.size()) {
    size_t j = list.find('\n', i);
    if (j == std::string::npos) j = list.size();
    std::string line = list.substr(i, j - i);
    if (line.rfind("worktree ", 0) == 0) path = line.substr(9);
    if (line == "branch refs/heads/" + branch) return path;
    i = j + 1;
  }
  return {};
}

namespace {

// Opens the run for an evidence decision: sealed success, not yet decided.
std::unique_ptr<store::Bundle> open_for_decision(const fs::path& root, const std::string& run_id,
                                                 EvidenceResult& why) {
  if (!store::find_run(root, run_id)) {
    why = result(EvidenceOutcome::not_found, "no run " + run_id);
    return nullptr;
  }
  if (std::string why_copy = copy_refusal(root, run_id); !why_copy.empty()) {
    why = result(EvidenceOutcome::refused, why_copy);
    return nullptr;
  }
  // Verify before acting: promoting a bundle changed after its seal would commit what no gate judged.
  if (std::string refusal = store::refusal_to_act(*store::find_run(root, run_id)); !refusal.empty()) {
    why = result(EvidenceOutcome::unverified, refusal);
    return nullptr;
  }
  auto b = store::Bundle::open(root, run_id);
  const json& m = b->manifest();
  if (m.contains("evidence")) {
    why = result(EvidenceOutcome::refused,
                 "run " + run_id + "'s evidence was already " + m["evidence"].value("decision", "decided") +
                     " by " + m["evidence"].value("by", "?") + " at " + m["evidence"].value("at", "?"),
                 m["evidence"]);
    return nullptr;
  }
  // A rolled-back run's change was undone on purpose: deciding on it again would bring it back.
  if (m.contains("rollback")) {
    why = result(EvidenceOutcome::refused, "run " + run_id + " was rolled back by " +
                                               m["rollback"].value("by", "?") + " at " +
                                               m["rollback"].value("at", "?") +
                                               "; its change is not decided again (run it again instead)");
    return nullptr;
  }
  if (m.value("status", "") != "sealed") {
    why = result(EvidenceOutcome::refused, "run " + run_id + " is " + m.value("status", "?") +
                                               (m.value("status", "") == "awaiting_approval"
                                                    ? ": approve it first (cp-host approve " + run_id + ")"
                                                    : ": only a sealed run's evidence can be decided"));
    return nullptr;
  }
  return b;
}

// The decision re-seals the bundle: its event carries the seal of the manifest with `evidence` (and the
// worktree's fate) in it.
void finish(store::Bundle& b, const std::string& type, const json& evidence, bool worktree_removed) {
  json patch{{"evidence", evidence}};
  if (worktree_removed) patch["worktree_kept"] = false;
  b.seal(type, evidence, patch);
  log::governance(b.run_id(), "evidence",
                  "evidence " + evidence.value("decision", "") + " by " + evidence.value("by", ""), evidence);
}

}  // namespace

EvidenceResult promote(const fs::path& root, const std::string& run_id, const std::string& branch,
                       const Actor& actor) {
  if (std::string refusal = refusal_from_run(actor); !refusal.empty())
    return result(EvidenceOutcome::from_run, refusal);
  EvidenceResult why;
  try {
    auto b = open_for_decision(root, run_id, why);
    if (!b) return why;
    const json m = b->manifest();
    if (m.value("verdict", "") != "success")
      return result(EvidenceOutcome::refused, "run " + run_id + " has verdict " + m.value("verdict", "?") +
                                                  ": only a successful run's change can be promoted");
    fs::path repo = m.value("repo", "");
    std::string base = m.value("baseline_commit", "");
    if (repo.empty() || base.empty() || !fs::is_directory(repo))
      return result(EvidenceOutcome::refused,
                    "run " + run_id + " names no usable repository (" + repo.string() + ")");
    try {
      run::run_git(repo, {"check-ref-format", "--branch", branch}, "check the branch name");
    } catch (const run::WorkspaceError&) {
      return result(EvidenceOutcome::refused, "'" + branch + "' is not a valid branch name");
    }
    std::string holder = branch_checked_out_at(repo, branch);
    if (!holder.empty())
      return result(EvidenceOutcome::refused,
                    "branch '" + branch + "' is checked out at " + holder +
                        "; promote to another branch and merge it there, or check out "
                        "another branch in that worktree");
    // Where the commit goes: the branch tip, or the run's baseline for a new branch.
    std::string parent, old_value;
    try {
      parent =
          trim(run::run_git(repo, {"rev-parse", "--verify", "--quiet", "refs/heads/" + branch + "^{commit}"},
                            "resolve the branch"));
      old_value = parent;
    } catch (const run::WorkspaceError&) {
      parent = base;
      old_value = std::string(40, '0');  // update-ref: the ref must not exist yet
    }
    // The patch as sealed, read once and checked against the hash verified under the lock; git applies
    // this private copy, never the bundle's file (which someone could swap in between).
    std::string patch_text;
    try {
      patch_text = b->read_verified("artifacts/diff.patch");
    } catch (const std::exception& e) {
      return result(EvidenceOutcome::refused, std::string(e.what()) + ": nothing to promote");
    }
    if (patch_text.empty())
      return result(EvidenceOutcome::refused,
                    "run " + run_id + " changed nothing: there is no patch to promote");
    // A private index and patch copy, outside the bundle (the seal lists every file in it): the user's
    // index and files are never touched.
    const std::string tag = std::to_string(::getpid()) + "-" + run_id.substr(0, 64);
    fs::path index = fs::temp_directory_path() / ("cp-promote-index-" + tag);
    fs::path patch = fs::temp_directory_path() / ("cp-promote-patch-" + tag);
    std::vector<std::string> env{"GIT_INDEX_FILE=" + index.string()};
    struct Cleanup {
      std::vector<fs::path> p;
      ~Cleanup() {
        std::error_code e;
        for (const auto& f : p) fs::remove(f, e);
      }
    } cleanup{{index, patch}};
    store::write_atomic(patch, patch_text);
    run::run_git(repo, {"read-tree", parent}, "read the branch tree", env);
    try {
      run::run_git(repo, {"apply", "--cached", "--binary", "--whitespace=nowarn", patch.string()},
                   "apply the patch", env);
    } catch (const run::WorkspaceError& e) {
      return result(EvidenceOutcome::refused, "the change of run " + run_id + " does not apply cleanly to '" +
                                                  branch + "' at " + parent.substr(0, 12) + " (" + e.what() +
                                                  "); rebase the branch or replay the run on it");
    }
    std::string tree = trim(run::run_git(repo, {"write-tree"}, "write the tree", env));
    std::string who = actor.by + " (" + actor.by_kind + ", " + actor.how + ")";
    std::string msg = "Promote run " + run_id + " (task " + m.value("task_id", "") + ")\n\n" +
                      (actor.reason.empty() ? "" : actor.reason + "\n\n") + "Promoted-by: " + who +
                      "\nRun-Id: " + run_id + "\nContract-Sha256: " + m.value("contract_sha256", "") + "\n";
    std::vector<std::string> ident{"GIT_AUTHOR_NAME=cp-host", "GIT_AUTHOR_EMAIL=cp-host@localhost",
                                   "GIT_COMMITTER_NAME=cp-host", "GIT_COMMITTER_EMAIL=cp-host@localhost"};
    std::string commit =
        trim(run::run_git(repo, {"commit-tree", tree, "-p", parent, "-m", msg}, "make the commit", ident));
    try {
      run::run_git(
          repo, {"update-ref", "-m", "cp-host promote " + run_id, "refs/heads/" + branch, commit, old_value},
          "move the branch");
    } catch (const run::WorkspaceError& e) {
      return result(EvidenceOutcome::refused, "branch '" + branch + "' moved while the promotion was made (" +
                                                  e.what() + "); try again");
    }
    json evidence = actor_record(actor);
    evidence["decision"] = "promoted";
    evidence["branch"] = branch;
    evidence["commit"] = commit;
    evidence["parent"] = parent;
    // The change now lives in the repository: the run's worktree has served its purpose.
    bool removed = false;
    if (m.value("worktree_kept", false) && m.contains("worktree"))
      removed = run::Workspace::remove(repo, m["worktree"].get<std::string>());
    finish(*b, "EVIDENCE_PROMOTED", evidence, removed);
    return result(EvidenceOutcome::promoted,
                  "run " + run_id + " promoted to " + branch + " as " + commit.substr(0, 12), evidence);
  } catch (const std::exception& e) {
    return result(EvidenceOutcome::error, e.what());
  }
}

EvidenceResult reject_evidence(const fs::path& root, const std::string& run_id, const Actor& actor) {
  if (std::string refusal = refusal_from_run(actor); !refusal.empty())
    return result(EvidenceOutcome::from_run, refusal);
  EvidenceResult why;
  try {
    auto b = open_for_decision(root, run_id, why);
    if (!b) return why;
    const json m = b->manifest();
    json evidence = actor_record(actor);
    evidence["decision"] = "rejected";
    bool removed = false;
    if (m.value("worktree_kept", false) && m.contains("worktree"))
      removed = run::Workspace::remove(m.value("repo", ""), m["worktree"].get<std::string>());
    finish(*b, "EVIDENCE_REJECTED", evidence, removed);
    return result(EvidenceOutcome::rejected,
                  "run " + run_id + "'s change rejected" + (removed ? "; its worktree is removed" : ""),
                  evidence);
  } catch (const std::exception& e) {
    return result(EvidenceOutcome::error, e.what());
  }
}

}  // namespace cp::control
