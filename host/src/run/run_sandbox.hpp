// The sandbox of one run, decided from its compiled contract (the pack's `sandbox` section and the
// contract's tool_permissions) and the run's places on disk; then made real (os::Confinement).
#pragma once

#include "os/confinement.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace cp::run {

struct RunPlaces {
  std::filesystem::path root;        // the runtime root (--root): hidden from the run
  std::filesystem::path repo;        // the user's repository: hidden, apart from its .git (read only)
  std::filesystem::path worktree;    // writable (read only when tool_permissions.filesystem is read-only)
  std::filesystem::path tmp;         // the run's private TMPDIR: writable
  std::filesystem::path scratch;     // <bundle>/artifacts/scratch: writable, kept as evidence
  std::filesystem::path agent_home;  // a runner's per-run home (CODEX_HOME): writable; may be empty
  // The folder shared across runs that the runner's "shared_state:<name>" names: writable; may be empty.
  std::filesystem::path shared_state;
  std::vector<std::filesystem::path> hidden;  // more places no run may see (tokens, keys)
};

struct RunSandboxPlan {
  os::SandboxPolicy policy;
  bool may_run_unsandboxed = false;  // pack sandbox.on_unsupported == run_unsandboxed
  uint64_t disk_budget_bytes = 0;
};

RunSandboxPlan plan_run_sandbox(const nlohmann::json& compiled_contract, const RunPlaces& places);

// What a run of this compiled contract would get on this host, before any path exists: the kernel's
// support, the pack's settings, and whether the run would be refused. For `intake preview`.
nlohmann::json sandbox_preview(const nlohmann::json& compiled_contract);

// The plan made real. Throws SandboxUnavailable when the kernel cannot enforce it and the pack does not
// allow running unsandboxed; `manifest_entry` receives what the manifest records either way.
class SandboxUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
std::shared_ptr<os::Confinement> confine_run(const RunSandboxPlan& plan, const std::string& run_id,
                                             nlohmann::json& manifest_entry);

}  // namespace cp::run
