// What confines one run's processes: its prepared sandbox and its cgroup, as one value that the run's
// call contexts carry and that crosses to cp-plugin-worker as JSON (the worker prepares its own copy).
#pragma once

#include "os/run_cgroup.hpp"
#include "os/sandbox.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace cp::os {

struct Confinement {
  std::shared_ptr<const PreparedSandbox> sandbox;  // never null: a disabled policy is still a decision
  std::shared_ptr<RunCgroup> cgroup;               // null when the host could not make one

  // {"policy": SandboxPolicy, "cgroup": "<path>" | ""}
  nlohmann::json to_wire() const;
  // Prepares the sandbox again and attaches the cgroup. Null with `error` when it cannot be enforced
  // here; the caller must then start nothing.
  static std::shared_ptr<const Confinement> from_wire(const nlohmann::json& doc, std::string& error);
};

}  // namespace cp::os
