// Where a queue's operations are kept: the seam between the queue's decisions (LogQueueBackend, which
// decides every change on the state the log replays to) and the storage that makes those decisions
// atomic across processes and machines. Two logs exist: QueueStore (queue.jsonl under an flock) and
// PgOpLog (a table in PostgreSQL under an advisory lock).
//
// What every log keeps: operations are appended only by transact(), which catches up with every other
// writer, lets the caller decide on that state, and records the decision whole or not at all; every
// reader sees operations in the one order they were recorded in.
#pragma once

#include "queue/queue_state.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cp::queue {

class OpLog {
 public:
  virtual ~OpLog() = default;

  virtual std::string kind() const = 0;  // "jsonl", "postgres"

  // Catches up with operations recorded by anyone since the last call. True when the state changed.
  virtual bool refresh() = 0;

  // Under the log's exclusive lock: catches up, lets `decide` look at the current state and return
  // operations, checks them against schemas/queue_item.schema.json (std::invalid_argument when one does not
  // fit), records them durably and applies them. Returns the operations written. `decide` may be called
  // more than once (a log that lost its connection tries again) and must then decide afresh.
  using Decide = std::function<std::vector<nlohmann::json>(const QueueState&)>;
  virtual std::vector<nlohmann::json> transact(const Decide& decide) = 0;

  // Moves the operations of items that ended more than `keep_terminal_ms` ago (and are no kept item's
  // dependency) out of the live log into its history. Returns how many operations left the live log.
  virtual size_t compact(int64_t keep_terminal_ms) = 0;

  virtual const QueueState& state() const = 0;
  // Records skipped on reading (unparseable, off-schema) and operations that did not fit their item.
  virtual std::vector<Problem> problems() const = 0;
  virtual uint64_t lines() const = 0;  // operations in the live log
  // Grows whenever what this log has read changes.
  virtual uint64_t generation() const = 0;

  // Whether the log tells when anyone recorded something (PostgreSQL's NOTIFY); a log that does not is
  // polled (queue.jsonl).
  virtual bool notifies() const = 0;
  // A log that notifies: waits up to `timeout` for such a sign, returning early when one came. Safe to call
  // while another thread uses the log (it waits on a connection of its own).
  virtual void wait_for_others(std::chrono::milliseconds timeout) = 0;
};

// The items compaction keeps in the live log at `now`: those not ended, those that ended within
// `keep_terminal_ms`, and every dependency of a kept item.
std::set<std::string> kept_by_compaction(const QueueState& state, int64_t keep_terminal_ms, int64_t now);

// Replaces U+0000 in every string of `op` (keys included) with U+FFFD: a NUL in a reason or an error
// (a child's output, an API caller's text) would otherwise be refused by one log (PostgreSQL's jsonb) and
// kept by the other. Both logs record operations so.
void strip_nul(nlohmann::json& op);

// One recorded operation read back: the operation, or nothing with `problem` set ("not JSON", "does not fit
// queue_item.schema.json: /attempt: ..."). The caller has already bounded its size and nesting.
std::optional<nlohmann::json> parse_op(const std::string& text, std::string& problem);

// The schema problem of one operation ("/attempt: must be integer"), or "" when it fits.
std::string op_schema_problem(const nlohmann::json& op);

}  // namespace cp::queue
