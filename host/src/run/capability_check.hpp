// The probe step of a run (and of `cp-host intake preview`): git must be present, the probes a runner
// names in its capabilities ("probe:<id>") are run, and a contract that needs tool execution is refused
// when a probe says the provider cannot execute tools. Everything here fails closed: a probe that errors
// or is missing is a problem, never a pass.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace cp::plugin {
class Registry;
struct PluginInfo;
}  // namespace cp::plugin

namespace cp::run {

struct CapabilityCheck {
  nlohmann::json summary;                         // runtime_capability_summary for the manifest
  std::map<std::string, nlohmann::json> answers;  // probe id -> its probe_result document
  std::string problem;                            // empty when the run may go on
};

// True when the contract lets the agent run commands, write files or call MCP tools.
bool contract_needs_tools(const nlohmann::json& contract);

CapabilityCheck check_capabilities(const plugin::Registry& registry, const plugin::PluginInfo& runner,
                                   const nlohmann::json& contract);

}  // namespace cp::run
