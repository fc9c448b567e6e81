// A chain execution read back from its bundle (runs/<chain run id>/, manifest kind "chain"): the steps of
// its chain file in order, each with what the chain's events say happened to it — the run a task step
// started (named before it starts, so a running step has its run), the handoff before it, a review step's
// reviewer runs and votes and the quorum — and each run's own status and verdict from its manifest. A chain
// still running is shown as far as it got. What `GET /api/chains/{run_id}` and `cp-host chain show` print.
#pragma once

#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace cp::chain {

struct ChainView {
  enum class Outcome { ok, not_found, not_a_chain, unreadable } outcome = Outcome::not_found;
  std::string message;  // not ok: what is wrong
  nlohmann::json view;  // ok: see docs/api.md (Chains)
};

ChainView chain_view(const std::filesystem::path& root, const std::string& run_id);

// What a chain view says of one step run from its manifest's summary: status, runner, and verdict, reason
// and title when it has them, added to `entry`.
void add_run_summary(nlohmann::json& entry, const store::RunSummary& summary);

// The most of a chain's events.jsonl read; a chain writes a few events per step, far below this.
inline constexpr size_t kMaxChainEventBytes = 16u << 20;

}  // namespace cp::chain
