// The listing's screen: for every run the catalogue holds, the fields a filter of GET /api/runs reads,
// packed one small row per run in a vector ordered oldest first (a new run is appended). A filtered page
// that must pass over most of 100,000 runs then reads a few megabytes in order instead of chasing the
// catalogue's map nodes. The rows only screen: a row that passes is confirmed by store::matches on the run's
// summary, which alone decides what a filter means.
#pragma once

#include "store/run_index.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace cp::serve {

class RunRows {
 public:
  struct Row {
    const store::RunSummary* run;                            // the catalogue's summary; stable until remove()
    uint32_t status, verdict, runner, pack, workflow, kind;  // interned values (0: empty)
    std::string text;  // run id, task id and title, ASCII lower case, NUL between them
  };

  // What a query asks of a row, its values interned; nullopt when no run can match (a value no run has).
  struct Screen {
    std::optional<uint32_t> status, verdict, runner, pack, workflow, kind;
    std::string text;  // folded
  };

  // The summaries must stay at their addresses while their rows exist (the catalogue's map nodes do).
  void insert(const store::RunSummary& run);
  void update(const store::RunSummary& run);  // same created_at and run id, other fields changed
  void remove(const store::RunSummary& run);
  // Every row again, from the summaries in newest-first order (the catalogue's first build).
  void rebuild(const std::vector<const store::RunSummary*>& newest_first);

  std::optional<Screen> screen(const store::RunQuery& q) const;
  static bool passes(const Row& r, const Screen& s);

  // The number of rows older than (created_at, run_id): a newest-first walk after that run starts below it.
  size_t older_than(const std::string& created_at, const std::string& run_id) const;
  // The number of rows created before `since`: a newest-first walk stops there.
  size_t created_before(const std::string& since) const;

  const std::vector<Row>& rows() const { return rows_; }

 private:
  Row row_of(const store::RunSummary& run);
  uint32_t intern(const std::string& value);
  std::optional<uint32_t> lookup(const std::string& value) const;
  size_t position(const store::RunSummary& run) const;  // the row of `run`, or rows_.size()

  std::vector<Row> rows_;
  std::unordered_map<std::string, uint32_t> codes_;
};

}  // namespace cp::serve
