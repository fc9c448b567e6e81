// A plan bundle (schemas/plan_bundle.schema.json) compiled into the shared task chain document
// (schemas/task_chain.schema.json, schema_version 1), each step's contract inline.
//
// Nothing of the plan is trusted: it is checked against its schema; its fields against its task pack's
// (when it names one: required fields present, each value of the field's type and pattern); its steps for
// unique ids, `depends_on` naming earlier steps, `parallel_group`s that are consecutive and handoffs that
// join the roles around them; then every contract it produces is validated exactly as `cp-host validate`
// would validate it as a file of the root (schema, pack, runner and role references, role config, browser
// policy). `ok` is true only when there is no diagnostic at all. Every diagnostic points into the plan
// (`/steps/2/allowed_paths/0`), and names the contract's own pointer in its message when the problem was
// found in the contract built from that step.
#pragma once

#include "contract/validation.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::control {

struct CompiledPlan {
  bool ok = false;
  // The chain: {schema_version: 1, chain_id, title, lifecycle: {require_pm_loop}, steps: [...]}. chain_id is
  // "<task pack or "plan">-<first 12 hex of the plan's sha256>"; a task step's contract is the contract
  // object; a review step's reviewers are contract objects. Null when !ok.
  nlohmann::json chain;
  std::vector<contract::Diagnostic> diagnostics;  // file "plan", pointers into the plan
};

// `root` holds packs/ (governance and task packs) and policies/, as for `cp-host validate --root`;
// `registry` (may be null: plugin references are then not checked) is what runners are looked up in.
CompiledPlan compile_plan(const nlohmann::json& plan, const std::filesystem::path& root,
                          const plugin::Registry* registry);

}  // namespace cp::control
