// A task chain (schemas/task_chain.schema.json): steps that are each a contract for a role, explicit
// handoffs between roles, and reviewer quorums. Loading checks the chain against its schema, every
// contract it names like `cp-host validate` would, that each step's role is the role its contract assigns,
// that each handoff joins the roles on either side of it, and (unless the chain opts out) that the roles
// close the PM -> TECH_LEAD -> WORKER -> REVIEWER -> TESTING -> TECH_LEAD -> PM loop. Errors carry the JSON
// pointer into the chain file.
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
  std::string id, kind, role;                    // kind: task | handoff | review
  std::vector<std::filesystem::path> contracts;  // task: one; review: one per reviewer
  int quorum = 0;                                // review: approvals needed
  nlohmann::json handoff;  // handoff: {from_role, to_role, summary, risks, next_role_context}
};

struct ChainSpec {
  nlohmann::json doc;  // the chain file as written
  std::string chain_id, workflow_id;
  bool require_pm_loop = true;
  std::vector<Step> steps;
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

LoadResult load_chain(const std::filesystem::path& chain_file, const std::filesystem::path& root,
                      const std::filesystem::path& plugins_dir, const plugin::Registry* registry);

}  // namespace cp::chain
