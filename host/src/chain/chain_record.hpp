// A queued chain's record: queue/chains/<run_id>/chain.json (schemas/queued_chain.schema.json), written
// once when the chain is queued and never changed, with the steps' contracts copied beside it
// (contracts/). It says what the chain is and which queue items run which step; what happens to them is in
// the queue, and at the end in the chain bundle runs/<run_id>/.
#pragma once

#include "chain/chain_spec.hpp"
#include "queue/queue_state.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace cp::chain {

// The kind of the queue item that ends a chain (queue/queue_state.hpp: QueueItem::kind).
inline constexpr const char* kChainItemKind = "chain";

std::filesystem::path chain_record_dir(const std::filesystem::path& root, const std::string& run_id);

// The record of queued chain `run_id`, checked against its schema; nullopt when there is none (or it does
// not read as one: an id that is not a run id, a file that is not the schema's).
std::optional<nlohmann::json> read_chain_record(const std::filesystem::path& root, const std::string& run_id);

// The chain's cancel (queue/chains/<run_id>/cancel.json, schemas/queued_chain_cancel.schema.json), null
// while nobody cancelled it.
nlohmann::json read_chain_cancel(const std::filesystem::path& root, const std::string& run_id);

// The chain a record describes, as the seal and the views need it (steps, roles, handoffs, quorums, the
// copied contracts); nothing is checked again.
ChainSpec spec_of_record(const nlohmann::json& record, const std::filesystem::path& root);

// The step of the record that queue item `item_id` runs, and which of its items it is (a reviewer's
// number - 1); nullopt when no step names it.
struct RecordStepRef {
  size_t step = 0, item = 0;
};
std::optional<RecordStepRef> step_of_item(const nlohmann::json& record, const std::string& item_id);

// The run id of the chain submitted with `origin` ("intake:<id>") that the queue took (it holds the chain's
// item, or the chain has its bundle), if there is one: what a caller that died after submitting, before it
// could record the chain as its own, finds again instead of queueing the same work twice.
std::optional<std::string> taken_chain_with_origin(const std::filesystem::path& root,
                                                   const std::string& origin, const queue::QueueState& queue);

// What a submission that died part way leaves behind: a folder under queue/chains/.incoming/ (a chain being
// written), or a record whose chain the queue never took (killed between the record and the queue's batch,
// or a batch cut short and repaired away) — no queue item and no bundle of that run: nothing would ever
// run or seal it, yet it would be listed as queued for ever. Each goes once older than `min_age`, so a
// submission under way is never touched. Returns how many folders went.
size_t sweep_unqueued_chains(const std::filesystem::path& root, const queue::QueueState& queue,
                             std::chrono::seconds min_age);

}  // namespace cp::chain
