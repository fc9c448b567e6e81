// queue.jsonl on disk: the append-only log of queue operations, shared by every cp-host process of a
// runtime root (serve, `cp-host queue ...`). Writers serialise on an flock of queue.lock and decide under
// it (transact), so a cancel from the CLI and a claim from serve can never cross. Each operation is one
// write() of one line followed by fdatasync: after a crash the log ends in whole lines, or in a torn
// last line that the next writer cuts off (its writer died before the fsync, so nobody acted on it).
#pragma once

#include "queue/op_log.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cp::queue {

class QueueStore final : public OpLog {
 public:
  // `runtime_dir` is <root>/.runtime-cache/cortexpilot; it is created when missing.
  explicit QueueStore(std::filesystem::path runtime_dir);
  ~QueueStore();
  QueueStore(const QueueStore&) = delete;
  QueueStore& operator=(const QueueStore&) = delete;

  std::string kind() const override { return "jsonl"; }

  // Catches up with operations appended by any process since the last call. Returns true when the state
  // changed. Lines that do not parse or validate are skipped and listed in problems(). Not thread-safe:
  // callers serialise (LogQueueBackend holds a mutex).
  bool refresh() override;

  // Under the exclusive lock: catches up, lets `decide` look at the current state and return operations,
  // validates them against schemas/queue_item.schema.json (std::invalid_argument when one does not fit),
  // appends them durably and applies them. Returns the operations written.
  std::vector<nlohmann::json> transact(const Decide& decide) override;

  // Rewrites queue.jsonl with only the operations of items that are not terminal, ended within
  // `keep_terminal_ms`, or are a dependency of a kept item; the full log is kept first as
  // history/queue-<time>.jsonl. Returns the number of operations dropped from the live log.
  size_t compact(int64_t keep_terminal_ms) override;

  const QueueState& state() const override { return state_; }
  // Lines skipped (unparseable, schema-invalid) and operations that did not fit their item's state.
  std::vector<Problem> problems() const override;
  const std::filesystem::path& path() const { return path_; }
  uint64_t lines() const override { return line_no_; }
  // Grows whenever what this store has read changes: a line read or appended, the file replaced.
  uint64_t generation() const override { return generation_; }
  // Other processes' appends are found by polling the file: wait_for_others() only sleeps.
  bool notifies() const override { return false; }
  void wait_for_others(std::chrono::milliseconds timeout) override;

 private:
  void reopen();
  bool read_new(bool may_repair);
  int lock_exclusive();

  std::filesystem::path dir_, path_, lock_path_;
  int fd_ = -1;
  unsigned long inode_ = 0;
  uint64_t offset_ = 0;  // bytes consumed (whole lines)
  uint64_t line_no_ = 0;
  uint64_t generation_ = 0;
  QueueState state_;
  std::vector<Problem> bad_lines_;
  // Raw lines and the item each belongs to, in log order: what compaction keeps.
  std::vector<std::pair<std::string, std::string>> raw_;
};

}  // namespace cp::queue
