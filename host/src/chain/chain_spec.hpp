// A task chain (schemas/task_chain.schema.json): steps that are each a contract for a role, explicit
// handoffs between roles, and reviewer quorums. Loading checks the chain against its schema, every
// contract it names or holds inline like `cp-host validate` would, that each step's role is the role its
// contract assigns, that each handoff joins the roles on either side of it, and (unless the chain opts out)
// that the roles close the PM -> TECH_LEAD -> WORKER -> REVIEWER -> TESTING -> TECH_LEAD -> PM loop.
//
// It also resolves the order the steps run in: a task or review step without depends_on waits for the step
// before it (handoffs are passed over); consecutive steps sharing a parallel_group start together (each
// waits for what precedes the group) and the step after the group waits for every step of it; an explicit
// depends_on replaces the implicit wait. Two steps that could run at once but lock overlapping paths
// (allowed_paths plus exclusive_paths), one of them a task step, are put in file order: the later waits for
// the earlier, so it starts from the earlier one's change rather than beside it. An unknown id, a step
// naming itself or a handoff, a cycle, a group used twice: errors. Errors carry the JSON pointer into the
// chain document.
#pragma once

#include "contract/validation.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::chain {

struct Step {
  std::string id, kind, role;  // kind: task | handoff | review
  // task: one contract; review: one per reviewer. A file the chain names, or the staged copy of a contract
  // the chain holds inline (every contract, when the source asks for copies: ChainSource::stage_all).
  std::vector<std::filesystem::path> contracts;
  std::vector<nlohmann::json> contract_docs;  // the same contracts, as read
  int quorum = 0;                             // review: approvals needed
  nlohmann::json handoff;  // handoff: {from_role, to_role, summary, risks, next_role_context}

  // The order (task and review steps). depends_on: the steps this one waits for, resolved (implicit or
  // explicit, plus ordered_after); ordered_after: those added because their paths overlap.
  std::vector<std::string> depends_on, ordered_after;
  bool depends_explicit = false;
  std::string parallel_group;
  std::vector<std::string> exclusive_paths;  // as written
  std::vector<std::string> lock_paths;  // allowed_paths of every contract plus exclusive_paths, normalised
  bool continue_on_fail = false;
};

struct ChainSpec {
  nlohmann::json doc;  // the chain document as written
  std::string chain_id, workflow_id;
  bool require_pm_loop = true;
  std::vector<Step> steps;
  // Indices of the task and review steps in an order every step's depends_on respects (file order where
  // the dependencies leave a choice): the order `chain run` runs them in.
  std::vector<size_t> order;
  // Where contracts were staged (inline ones, or all of them); empty when none was. The caller that asked
  // for a temporary folder removes it.
  std::filesystem::path staging;
};

// The loop a chain closes, in order.
const std::vector<std::string>& pm_loop();

// True when `roles` (the roles of the task and review steps, in order) contain the PM loop in order and
// start and end with PM.
bool closes_pm_loop(const std::vector<std::string>& roles);

struct LoadResult {
  bool ok = false;
  ChainSpec spec;
  std::vector<contract::Diagnostic> diagnostics;
  std::string error;  // set when the file cannot be read at all
};

// Where a chain document came from, for resolving its contract files and naming its diagnostics.
struct ChainSource {
  std::string display;             // how diagnostics name the document: its file, or "request body"
  std::string text;                // the document's bytes when they are known (diagnostics' line numbers)
  std::string pointer_prefix;      // put before every pointer into the document ("/chain" when wrapped)
  std::filesystem::path base_dir;  // contract file paths are relative to it
  // Contract files must stay inside base_dir: relative, no "..", no link leading out. A chain that came
  // over the API may name only files of the project, never any file the server can read.
  bool confine_paths = false;
  // Where contracts are copied before they are checked (created when needed). Empty: a fresh temporary
  // folder when the chain holds a contract inline (ChainSpec::staging names it; the caller removes it).
  std::filesystem::path staging;
  // Copy every contract, files included, and check the copies: what is checked is then what runs, whatever
  // happens to the files afterwards (a queued chain). False: files are checked in place, inline ones staged.
  bool stage_all = false;
};

LoadResult load_chain_document(const nlohmann::json& doc, const ChainSource& source,
                               const std::filesystem::path& root, const std::filesystem::path& plugins_dir,
                               const plugin::Registry* registry);

// A chain file: read (bounded, depth-checked), then load_chain_document with the file's folder as the base.
LoadResult load_chain(const std::filesystem::path& chain_file, const std::filesystem::path& root,
                      const std::filesystem::path& plugins_dir, const plugin::Registry* registry);

}  // namespace cp::chain
