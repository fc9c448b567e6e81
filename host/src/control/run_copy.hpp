// Whether a run bundle under a root is a copy of another node's run, kept from the shared store (serve's
// run copies: `runs/.replicas/<id>` marks one). A copy serves reads; decisions that re-seal a bundle
// (approve, reject, promote, reject evidence, roll back) are refused on it, since only the node that ran
// the run holds the bundle that is its record.
#pragma once

#include <filesystem>
#include <string>

namespace cp::control {

// Empty when `run_id` is this node's own run (or none); else why a decision on it is refused here, naming
// the node that ran it.
std::string copy_refusal(const std::filesystem::path& root, const std::string& run_id);

}  // namespace cp::control
