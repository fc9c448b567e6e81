// The catalogue's compact summary of every run: one fixed-size row per run, whose listing fields are codes
// into a table of interned JSON values (a status, a pack, a task id recur across thousands of runs), whose
// times are kept as milliseconds when their text is the canonical one, and whose run id lives in one shared
// arena. A row is about 128 bytes however many fields the manifest lists, where a store::RunSummary with its
// JSON object costs a few kilobytes. The rows answer every question a listing asks (store::matches's
// meaning, re-stated on codes) and give back each run's fields exactly as its manifest wrote them.
//
// Rows are numbered once and keep their number until removed (a removed row's number is reused), so the
// orders kept beside them (run_catalog.hpp) are arrays of row numbers. The table is also what the
// persistent index (run_index_file.hpp) saves and loads.
#pragma once

#include "serve/id_slots.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cp::serve {

class RunTable {
 public:
  // The manifest fields a listing shows besides run_id and status, in the order a JSON object dumps them.
  enum Field : uint8_t {
    chain,
    created_at,
    duration_ms,
    finished_at,
    kind,
    pack,
    queue,
    reason,
    runner,
    sealed_at,
    task_id,
    title,
    verdict,
    workflow_id,
    kFieldCount
  };
  // Fields that may be held as a number: the three times (milliseconds, when the text is exactly
  // core::iso_from_ms's) and the duration (an integer).
  static constexpr int kNumericCount = 4;

  static constexpr uint32_t kAbsent = 0;            // a field code: the manifest has no such field
  static constexpr uint32_t kNumber = 0xFFFFFFFFu;  // a field code: the value is in Row::num
  static constexpr uint8_t kDead = 1, kChain = 2, kLive = 4, kFinal = 8;

  struct Row {
    uint32_t id = 0;      // offset of the run id in the arena
    uint32_t gates = 0;   // offset of the run's gate results in gate_results()
    uint32_t status = 0;  // value code of the status (always a string)
    uint32_t code[kFieldCount] = {};
    int64_t num[kNumericCount] = {};  // created_at, finished_at, sealed_at, duration_ms, when code is kNumber
    int64_t last_ms = 0;              // the last event's time (INT64_MAX while the run is live)
    uint64_t stamp = 0;               // the manifest's inode, size and times, hashed (run_index_file.hpp)
    uint8_t id_len = 0, ngates = 0, flags = 0;
  };

  // A gate result: the gate id's code (gate_name()) and the verdict's code (value code of a string).
  struct GateResult {
    uint32_t gate, verdict;
  };

  // What a query asks of a row, as codes; nullopt when no run can match (a value no run has).
  struct Screen {
    std::optional<uint32_t> status, verdict, runner, pack, workflow;
    int kind = 0;  // 0 any, 1 run, 2 chain
    std::string since, text;
    bool awaiting = false;  // the verdict asked is kAwaitingApproval
  };

  // Adds the run, or (with `at`) replaces row `at`, which must hold the same run id. Returns its number.
  uint32_t put(const store::RunSummary& s, int64_t last_ms, uint64_t stamp, std::optional<uint32_t> at = {});
  void remove(uint32_t row);
  // Gives back what growing by doubling left unused (after a bulk fill).
  void shrink();

  // The row of `run_id`, if the table holds it.
  std::optional<uint32_t> find(std::string_view run_id) const;

  const Row& row(uint32_t r) const { return rows_[r]; }
  size_t capacity() const { return rows_.size(); }  // numbers in use or free
  std::string_view run_id(uint32_t r) const { return {arena_.data() + rows_[r].id, rows_[r].id_len}; }
  // The field as store::read_run_summary's text(): the string the manifest holds, else "".
  std::string text(uint32_t r, Field f) const;
  std::string_view status(uint32_t r) const { return str(rows_[r].status); }
  std::string created_text(uint32_t r) const { return text(r, created_at); }
  // created_at in milliseconds (0 when absent or not a time), the first event's time.
  int64_t created_ms(uint32_t r) const;
  // A time field in milliseconds; `fallback` when it is absent, no string or not a time.
  int64_t time_ms(uint32_t r, Field f, int64_t fallback) const;
  // duration_ms as store::RunSummary has it: -1 when absent or no number.
  long long duration(uint32_t r) const;
  // The fields as the manifest wrote them, with run_id and status: what GET /api/runs lists.
  nlohmann::json fields(uint32_t r) const;
  // The summary as store::read_run_summary gave it (without `fields` and the live-only fields) for the
  // aggregates, which read status, verdict, times, duration and gates.
  store::RunSummary summary(uint32_t r) const;
  std::vector<std::pair<std::string, std::string>> gates(uint32_t r) const;
  const GateResult* gate_results(uint32_t r) const { return gate_store_.data() + rows_[r].gates; }
  std::optional<uint32_t> gate_code(const std::string& gate_id) const;
  const std::string& gate_name(uint32_t code) const { return gate_names_[code]; }
  size_t gate_count() const { return gate_names_.size(); }
  std::optional<uint32_t> string_code(const std::string& value) const;  // a value code of a JSON string
  std::string_view str(uint32_t code) const;  // the value's string ("" when it is no string)

  // (created_at, run_id) of row a is before that of row b: the catalogue's order, oldest first.
  bool older(uint32_t a, uint32_t b) const;
  // Row r is older than the key (created_at, run_id).
  bool older_than_key(uint32_t r, const std::string& created_at, std::string_view run_id) const;

  std::optional<Screen> screen(const store::RunQuery& q) const;
  bool matches(uint32_t r, const Screen& s) const;  // store::matches, on the row

  // The raw parts, for run_index_file: saved as they are and checked on load.
  struct Value {
    std::string dump;  // the JSON text
    std::string str;   // its string, when it is one
    bool is_string = false;
  };
  const std::vector<Row>& rows() const { return rows_; }
  const std::string& arena() const { return arena_; }
  const std::vector<Value>& values() const { return values_; }
  const std::vector<std::string>& gate_names() const { return gate_names_; }
  const std::vector<GateResult>& gate_store() const { return gate_store_; }
  // Takes parts a loader checked: every offset in range, every code known. False when two rows hold the
  // same run id, or a value or gate id is held twice (the table is then not to be used).
  bool adopt(std::vector<Row> rows, std::string arena, std::vector<Value> values,
             std::vector<std::string> gate_names, std::vector<GateResult> gate_store);

 private:
  uint32_t intern(const nlohmann::json& v);
  uint32_t intern_dump(std::string dump, const nlohmann::json* parsed);
  uint32_t gate_id(const std::string& g);
  void set_field(Row& row, Field f, const nlohmann::json* v);
  static int numeric_slot(Field f);

  std::vector<Row> rows_;
  std::vector<uint32_t> free_;
  std::string arena_;
  size_t arena_dead_ = 0;               // bytes of removed runs' ids
  std::vector<Value> values_{Value{}};  // code 0: absent
  std::unordered_map<std::string, uint32_t> value_code_;
  std::vector<std::string> gate_names_;
  std::unordered_map<std::string, uint32_t> gate_code_;
  std::vector<GateResult> gate_store_;
  IdSlots ids_;  // run id -> row
};

}  // namespace cp::serve
