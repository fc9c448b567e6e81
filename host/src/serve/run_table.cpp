#include "serve/run_table.hpp"

#include "core/clock.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace cp::serve {

using nlohmann::json;

namespace {

constexpr const char* kFieldNames[RunTable::kFieldCount] = {
    "chain",  "created_at", "duration_ms", "finished_at", "kind",  "pack",    "queue",
    "reason", "runner",     "sealed_at",   "task_id",     "title", "verdict", "workflow_id"};

char fold(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Whether `needle` (not empty, already folded) occurs in `hay`, ignoring ASCII case (store::matches's rule).
bool contains_folded(std::string_view hay, const std::string& needle) {
  if (needle.size() > hay.size()) return false;
  const size_t last = hay.size() - needle.size();
  for (size_t i = 0; i <= last; ++i) {
    if (fold(hay[i]) != needle[0]) continue;
    size_t k = 1;
    while (k < needle.size() && fold(hay[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

// The time's milliseconds when `text` is exactly what core::iso_from_ms writes for them: only then can the
// text be given back from the number.
std::optional<int64_t> canonical_ms(const std::string& text) {
  if (text.size() != 24 || text[19] != '.' || text[23] != 'Z') return std::nullopt;
  int64_t ms = core::parse_iso_ms(text);
  if (ms < 0 || core::iso_from_ms(ms) != text) return std::nullopt;
  return ms;
}

}  // namespace

std::optional<uint32_t> RunTable::find(std::string_view id) const {
  return ids_.find(id, [this](uint32_t r) { return run_id(r); });
}

int RunTable::numeric_slot(Field f) {
  switch (f) {
    case created_at:
      return 0;
    case finished_at:
      return 1;
    case sealed_at:
      return 2;
    case duration_ms:
      return 3;
    default:
      return -1;
  }
}

uint32_t RunTable::intern_dump(std::string dump, const json* parsed) {
  auto found = value_code_.find(dump);
  if (found != value_code_.end()) return found->second;
  Value v;
  v.dump = dump;
  if (parsed && parsed->is_string()) {
    v.is_string = true;
    v.str = parsed->get<std::string>();
  }
  auto code = static_cast<uint32_t>(values_.size());
  values_.push_back(std::move(v));
  value_code_.emplace(std::move(dump), code);
  return code;
}

uint32_t RunTable::intern(const json& v) {
  return intern_dump(v.dump(-1, ' ', false, json::error_handler_t::replace), &v);
}

uint32_t RunTable::gate_id(const std::string& g) {
  auto [it, fresh] = gate_code_.try_emplace(g, static_cast<uint32_t>(gate_names_.size()));
  if (fresh) gate_names_.push_back(g);
  return it->second;
}

void RunTable::set_field(Row& row, Field f, const json* v) {
  if (!v) {
    row.code[f] = kAbsent;
    return;
  }
  if (int slot = numeric_slot(f); slot >= 0) {
    if (f == duration_ms && v->is_number_integer() &&
        !(v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      row.code[f] = kNumber;
      row.num[slot] = v->get<int64_t>();
      return;
    }
    if (f != duration_ms && v->is_string())
      if (auto ms = canonical_ms(v->get_ref<const std::string&>())) {
        row.code[f] = kNumber;
        row.num[slot] = *ms;
        return;
      }
  }
  row.code[f] = intern(*v);
}

uint32_t RunTable::put(const store::RunSummary& s, int64_t last_ms, uint64_t stamp,
                       std::optional<uint32_t> at) {
  Row row;
  if (at) {
    row.id = rows_[*at].id;
    row.id_len = rows_[*at].id_len;
  } else {
    row.id = static_cast<uint32_t>(arena_.size());
    row.id_len = static_cast<uint8_t>(std::min<size_t>(s.run_id.size(), 255));
    arena_.append(s.run_id, 0, row.id_len);
  }
  row.status = intern(json(s.status));
  for (int f = 0; f < kFieldCount; ++f) {
    auto it = s.fields.find(kFieldNames[f]);
    set_field(row, static_cast<Field>(f), it == s.fields.end() ? nullptr : &*it);
  }
  // Gate results: written over the run's old ones when they fit, else appended.
  const size_t n = std::min<size_t>(s.gates.size(), 255);
  if (at && rows_[*at].ngates >= n) {
    row.gates = rows_[*at].gates;
  } else {
    row.gates = static_cast<uint32_t>(gate_store_.size());
    gate_store_.resize(gate_store_.size() + n);
  }
  row.ngates = static_cast<uint8_t>(n);
  for (size_t i = 0; i < n; ++i)
    gate_store_[row.gates + i] = {gate_id(s.gates[i].first), intern(json(s.gates[i].second))};
  row.last_ms = last_ms;
  row.stamp = stamp;
  if (s.kind == "chain") row.flags |= kChain;
  const bool final = s.status == "sealed" || s.status == "unreadable" || s.status == "fenced";
  if (final) row.flags |= kFinal;
  if (!final && s.status != "awaiting_approval") row.flags |= kLive;
  if (at) {
    rows_[*at] = row;
    return *at;
  }
  uint32_t r;
  if (!free_.empty()) {
    r = free_.back();
    free_.pop_back();
    rows_[r] = row;
  } else {
    rows_.push_back(row);
    r = static_cast<uint32_t>(rows_.size() - 1);
  }
  ids_.add(r, [this](uint32_t n) { return run_id(n); });
  return r;
}

void RunTable::remove(uint32_t r) {
  ids_.remove(r, [this](uint32_t n) { return run_id(n); });
  arena_dead_ += rows_[r].id_len;
  // A long-lived serve drops runs (retention) and adds others: the ids of the dropped ones are given back
  // once they are most of the arena. Row numbers, and so the id index, do not change.
  if (arena_dead_ > (1u << 20) && arena_dead_ * 2 > arena_.size()) {
    std::string packed;
    packed.reserve(arena_.size() - arena_dead_);
    for (uint32_t n = 0; n < rows_.size(); ++n) {
      if (n == r || (rows_[n].flags & kDead)) continue;
      const auto at = static_cast<uint32_t>(packed.size());
      packed.append(run_id(n));
      rows_[n].id = at;
    }
    arena_.swap(packed);
    arena_dead_ = 0;
    rows_[r].id = 0;
    rows_[r].id_len = 0;
  }
  rows_[r].flags = kDead;
  rows_[r].ngates = 0;
  free_.push_back(r);
}

void RunTable::shrink() {
  rows_.shrink_to_fit();
  arena_.shrink_to_fit();
  gate_store_.shrink_to_fit();
  values_.shrink_to_fit();
}

std::string_view RunTable::str(uint32_t code) const {
  if (code == kAbsent || code == kNumber || code >= values_.size() || !values_[code].is_string) return {};
  return values_[code].str;
}

std::string RunTable::text(uint32_t r, Field f) const {
  const Row& row = rows_[r];
  if (row.code[f] == kNumber) {
    int slot = numeric_slot(f);
    return f == duration_ms ? std::string() : core::iso_from_ms(row.num[slot]);
  }
  return std::string(str(row.code[f]));
}

int64_t RunTable::created_ms(uint32_t r) const {
  const Row& row = rows_[r];
  if (row.code[created_at] == kNumber) return row.num[0];
  std::string t = text(r, created_at);
  return t.empty() ? 0 : std::max<int64_t>(0, core::parse_iso_ms(t));
}

int64_t RunTable::time_ms(uint32_t r, Field f, int64_t fallback) const {
  const Row& row = rows_[r];
  if (row.code[f] == kNumber) return row.num[numeric_slot(f)];
  std::string_view t = str(row.code[f]);
  if (t.empty()) return fallback;
  int64_t ms = core::parse_iso_ms(std::string(t));
  return ms < 0 ? fallback : ms;
}

long long RunTable::duration(uint32_t r) const {
  const Row& row = rows_[r];
  if (row.code[duration_ms] == kNumber) return row.num[3];
  if (row.code[duration_ms] == kAbsent) return -1;
  json d = json::parse(values_[row.code[duration_ms]].dump, nullptr, false);
  return d.is_number() ? d.get<long long>() : -1;
}

json RunTable::fields(uint32_t r) const {
  const Row& row = rows_[r];
  json out = json::object();
  out["run_id"] = std::string(run_id(r));
  out["status"] = std::string(status(r));
  for (int f = 0; f < kFieldCount; ++f) {
    uint32_t c = row.code[f];
    if (c == kAbsent) continue;
    if (c == kNumber) {
      int slot = numeric_slot(static_cast<Field>(f));
      out[kFieldNames[f]] = f == duration_ms ? json(row.num[slot]) : json(core::iso_from_ms(row.num[slot]));
    } else {
      out[kFieldNames[f]] = json::parse(values_[c].dump, nullptr, false);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> RunTable::gates(uint32_t r) const {
  std::vector<std::pair<std::string, std::string>> out;
  const GateResult* g = gate_results(r);
  for (uint8_t i = 0; i < rows_[r].ngates; ++i)
    out.emplace_back(gate_names_[g[i].gate], std::string(str(g[i].verdict)));
  return out;
}

store::RunSummary RunTable::summary(uint32_t r) const {
  store::RunSummary s;
  s.run_id = std::string(run_id(r));
  s.status = std::string(status(r));
  s.task_id = text(r, task_id);
  s.verdict = text(r, verdict);
  s.runner = text(r, runner);
  s.pack = text(r, pack);
  s.created_at = text(r, created_at);
  s.reason = text(r, reason);
  s.title = text(r, title);
  s.workflow_id = text(r, workflow_id);
  s.finished_at = text(r, finished_at);
  s.kind = rows_[r].flags & kChain ? "chain" : "run";
  s.duration_ms = duration(r);
  s.gates = gates(r);
  return s;
}

std::optional<uint32_t> RunTable::gate_code(const std::string& gate) const {
  auto it = gate_code_.find(gate);
  if (it == gate_code_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> RunTable::string_code(const std::string& value) const {
  auto it = value_code_.find(json(value).dump(-1, ' ', false, json::error_handler_t::replace));
  if (it == value_code_.end()) return std::nullopt;
  return it->second;
}

bool RunTable::older(uint32_t a, uint32_t b) const {
  const Row& x = rows_[a];
  const Row& y = rows_[b];
  // Two canonical times compare as their texts do: the same format, fixed width.
  if (x.code[created_at] == kNumber && y.code[created_at] == kNumber) {
    if (x.num[0] != y.num[0]) return x.num[0] < y.num[0];
  } else {
    std::string ca = created_text(a), cb = created_text(b);
    if (ca != cb) return ca < cb;
  }
  return run_id(a) < run_id(b);
}

bool RunTable::older_than_key(uint32_t r, const std::string& created, std::string_view id) const {
  std::string c = created_text(r);
  if (c != created) return c < created;
  return run_id(r) < id;
}

std::optional<RunTable::Screen> RunTable::screen(const store::RunQuery& q) const {
  Screen s;
  auto want = [&](const std::string& value, std::optional<uint32_t>& code) {
    if (value.empty()) return true;
    code = string_code(value);
    return code.has_value();
  };
  // A status filter matches a status or a verdict, and both are interned, so an unknown value matches none;
  // a verdict filter also has its own rule for runs awaiting approval.
  if (!want(q.status, s.status) || !want(q.runner, s.runner) || !want(q.pack, s.pack) ||
      !want(q.workflow, s.workflow))
    return std::nullopt;
  if (!q.verdict.empty()) {
    s.awaiting = q.verdict == store::kAwaitingApproval;
    s.verdict = string_code(q.verdict);
    if (!s.verdict && !s.awaiting) return std::nullopt;
  }
  if (!q.kind.empty()) s.kind = q.kind == "chain" ? 2 : q.kind == "run" ? 1 : 3;
  if (s.kind == 3) return std::nullopt;
  s.since = q.since;
  for (char c : q.text) s.text += fold(c);
  return s;
}

bool RunTable::matches(uint32_t r, const Screen& s) const {
  const Row& row = rows_[r];
  if (row.flags & kDead) return false;
  // A code compares equal to a string's code only when the field holds that very string.
  if (s.status && row.status != *s.status && row.code[verdict] != *s.status) return false;
  if (!s.verdict && s.awaiting && status(r) != store::kAwaitingApproval) return false;
  if (s.verdict && row.code[verdict] != *s.verdict && !(s.awaiting && status(r) == store::kAwaitingApproval))
    return false;
  if (s.runner && row.code[runner] != *s.runner) return false;
  if (s.pack && row.code[pack] != *s.pack) return false;
  if (s.workflow && row.code[workflow_id] != *s.workflow) return false;
  if (s.kind == 1 && (row.flags & kChain)) return false;
  if (s.kind == 2 && !(row.flags & kChain)) return false;
  if (!s.since.empty() && created_text(r) < s.since) return false;
  if (!s.text.empty() && !contains_folded(run_id(r), s.text) &&
      !contains_folded(str(row.code[task_id]), s.text) && !contains_folded(str(row.code[title]), s.text))
    return false;
  return true;
}

bool RunTable::adopt(std::vector<Row> rows, std::string arena, std::vector<Value> values,
                     std::vector<std::string> gate_names, std::vector<GateResult> gate_store) {
  rows_ = std::move(rows);
  arena_ = std::move(arena);
  arena_dead_ = 0;
  values_ = std::move(values);
  gate_names_ = std::move(gate_names);
  gate_store_ = std::move(gate_store);
  free_.clear();
  // A value or gate id held twice would split the runs that share it between two codes, and a filter by
  // either would miss some of them: such a table is refused.
  value_code_.clear();
  for (uint32_t c = 1; c < values_.size(); ++c)
    if (!value_code_.emplace(values_[c].dump, c).second) return false;
  gate_code_.clear();
  for (uint32_t c = 0; c < gate_names_.size(); ++c)
    if (!gate_code_.emplace(gate_names_[c], c).second) return false;
  for (uint32_t r = 0; r < rows_.size(); ++r) {
    Row& row = rows_[r];
    if (row.flags & kDead) {
      free_.push_back(r);
      continue;
    }
    // What is a chain, live or final follows from the kind and the status, whatever flags a saved row
    // carried (as store::read_run_summary decides them).
    const std::string_view st = status(r);
    const bool final = st == "sealed" || st == "unreadable" || st == "fenced";
    const bool chain = str(row.code[kind]) == "chain";
    row.flags = static_cast<uint8_t>((chain ? kChain : 0) | (final ? kFinal : 0) |
                                     (!final && st != "awaiting_approval" ? kLive : 0));
  }
  ids_.clear();
  ids_.reserve(rows_.size(), [this](uint32_t n) { return run_id(n); });
  for (uint32_t r = 0; r < rows_.size(); ++r)
    if (!(rows_[r].flags & kDead) && !ids_.add_unique(r, [this](uint32_t n) { return run_id(n); }))
      return false;
  return true;
}

}  // namespace cp::serve
