// `cp-host chain run CHAIN`: runs a task chain step by step into a chain bundle of its own
// (runs/<chain run id>/, manifest kind "chain", runner "chain"): every task and reviewer step is a
// full run with its own bundle, linked by the manifest's `chain` field. A step that succeeds with a change
// has it committed onto the chain branch cp-chain/<chain run id> (the promote machinery, no working tree
// touched) and the next step starts from there, so TESTING sees what WORKER wrote; each step's contract is
// never rewritten. Handoffs are recorded (CHAIN_HANDOFF_STEP_MARKED), reviewer quorums evaluated, the
// lifecycle evaluated (CHAIN_LIFECYCLE_EVALUATED), and the chain completes (CHAIN_COMPLETED) with
// reports/chain_report.json. A failed step or a missed quorum stops the chain with an incident pack naming
// the step.
#pragma once

#include "contract/validation.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cp::chain {

struct ChainRequest {
  std::filesystem::path chain_path;
  std::filesystem::path repo = ".";
  std::filesystem::path root = ".";
  std::filesystem::path plugins_dir;
  const std::atomic<bool>* interrupt = nullptr;
  std::function<void(const std::string&)> progress;
};

struct ChainOutcome {
  enum class Stage { invalid, internal, sealed };
  Stage stage = Stage::internal;
  std::vector<contract::Diagnostic> diagnostics;
  std::string error;
  std::string run_id;
  std::filesystem::path bundle_dir;
  std::string verdict, reason;
  nlohmann::json report;  // chain_report.json
};

ChainOutcome run_chain(const ChainRequest& req);

}  // namespace cp::chain
