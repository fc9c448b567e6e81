#include "serve/run_rows.hpp"

#include <algorithm>
#include <tuple>

namespace cp::serve {

namespace {

char fold(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string folded(const std::string& s) {
  std::string out = s;
  for (auto& c : out) c = fold(c);
  return out;
}

// Oldest first: created_at, then run id, ascending (the reverse of the catalogue's order).
bool older(const std::string& ca, const std::string& ia, const std::string& cb, const std::string& ib) {
  return std::tie(ca, ia) < std::tie(cb, ib);
}

}  // namespace

uint32_t RunRows::intern(const std::string& value) {
  if (value.empty()) return 0;
  auto [it, added] = codes_.try_emplace(value, static_cast<uint32_t>(codes_.size() + 1));
  return it->second;
}

std::optional<uint32_t> RunRows::lookup(const std::string& value) const {
  auto it = codes_.find(value);
  if (it == codes_.end()) return std::nullopt;
  return it->second;
}

RunRows::Row RunRows::row_of(const store::RunSummary& run) {
  std::string text = folded(run.run_id);
  text += '\0';
  text += folded(run.task_id);
  text += '\0';
  text += folded(run.title);
  return Row{&run,
             intern(run.status),
             intern(run.verdict),
             intern(run.runner),
             intern(run.pack),
             intern(run.workflow_id),
             intern(run.kind),
             std::move(text)};
}

size_t RunRows::position(const store::RunSummary& run) const {
  size_t at = older_than(run.created_at, run.run_id);
  return at < rows_.size() && rows_[at].run->run_id == run.run_id ? at : rows_.size();
}

void RunRows::insert(const store::RunSummary& run) {
  size_t at = older_than(run.created_at, run.run_id);
  rows_.insert(rows_.begin() + static_cast<std::ptrdiff_t>(at), row_of(run));
}

void RunRows::update(const store::RunSummary& run) {
  size_t at = position(run);
  if (at == rows_.size()) {
    insert(run);
    return;
  }
  rows_[at] = row_of(run);
}

void RunRows::remove(const store::RunSummary& run) {
  size_t at = position(run);
  if (at < rows_.size()) rows_.erase(rows_.begin() + static_cast<std::ptrdiff_t>(at));
}

void RunRows::rebuild(const std::vector<const store::RunSummary*>& newest_first) {
  rows_.clear();
  rows_.reserve(newest_first.size());
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) rows_.push_back(row_of(**it));
}

std::optional<RunRows::Screen> RunRows::screen(const store::RunQuery& q) const {
  Screen s;
  auto want = [&](const std::string& value, std::optional<uint32_t>& code) {
    if (value.empty()) return true;
    code = lookup(value);
    return code.has_value();  // a value no run has: nothing can match
  };
  if (!want(q.status, s.status) || !want(q.verdict, s.verdict) || !want(q.runner, s.runner) ||
      !want(q.pack, s.pack) || !want(q.workflow, s.workflow) || !want(q.kind, s.kind))
    return std::nullopt;
  s.text = folded(q.text);
  return s;
}

// A necessary condition of store::matches, never a sufficient one: status and verdict are each let through
// when either field holds the value (a status filter also matches verdicts; a verdict filter has its own
// rule for runs awaiting approval), and the text may be found in any of the three fields.
bool RunRows::passes(const Row& r, const Screen& s) {
  if (s.status && r.status != *s.status && r.verdict != *s.status) return false;
  if (s.verdict && r.verdict != *s.verdict && r.status != *s.verdict) return false;
  if (s.runner && r.runner != *s.runner) return false;
  if (s.pack && r.pack != *s.pack) return false;
  if (s.workflow && r.workflow != *s.workflow) return false;
  if (s.kind && r.kind != *s.kind) return false;
  return s.text.empty() || r.text.find(s.text) != std::string::npos;
}

size_t RunRows::older_than(const std::string& created_at, const std::string& run_id) const {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), 0, [&](const Row& r, int) {
    return older(r.run->created_at, r.run->run_id, created_at, run_id);
  });
  return static_cast<size_t>(it - rows_.begin());
}

size_t RunRows::created_before(const std::string& since) const {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), 0,
                             [&](const Row& r, int) { return r.run->created_at < since; });
  return static_cast<size_t>(it - rows_.begin());
}

}  // namespace cp::serve
