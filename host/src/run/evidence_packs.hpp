// The evidence a sealed run leaves for a reviewer: proof_pack.json when the run succeeded (what was
// proven, with the hashes to check it), incident_pack.json otherwise (what failed, where, the log tails,
// what to do next), approval_pack.json when the pack makes a human decide.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <string>

namespace cp::run {

struct SealFacts {
  std::string run_id, task_id, verdict, reason, contract_sha256, baseline_commit;
  nlohmann::json runner;   // {status, reason, commands}
  nlohmann::json changes;  // [{status, path, old_path?}]
  nlohmann::json gates;    // manifest gate summaries [{gate_id, verdict, required, report, summary}]
  std::string diff_sha256;
  // The gates declaring CP_FLAG_GATE_POLICY: the incident pack's advice for a denied run comes from the
  // first of them that failed (its verdict's next_action, or a generic line).
  std::set<std::string> policy_gates = {};
};

nlohmann::json make_proof_pack(const SealFacts& f, const std::filesystem::path& bundle_dir);
nlohmann::json make_incident_pack(const SealFacts& f, const std::filesystem::path& bundle_dir);
nlohmann::json make_approval_pack(const SealFacts& f, const std::string& pack_id);

// The last `bytes` of a file, starting at a line boundary when one is near. Empty when unreadable.
std::string file_tail(const std::filesystem::path& file, size_t bytes);

}  // namespace cp::run
