#include "serve/run_stats.hpp"

#include "core/clock.hpp"
#include "serve/id_slots.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>

namespace cp::serve {

namespace {

// A gate verdict in one byte (a run's gate results are held for every run the root has).
enum class Verdict : uint8_t { other, pass, warn, fail, error };
// Lets a map keyed by strings be asked with a string_view, without a copy.
struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

Verdict verdict_of(std::string_view v) {
  return v == "pass"    ? Verdict::pass
         : v == "warn"  ? Verdict::warn
         : v == "fail"  ? Verdict::fail
         : v == "error" ? Verdict::error
                        : Verdict::other;
}
bool failing(Verdict v) {
  return v == Verdict::fail || v == Verdict::error;
}
// A result that ends a streak of failures; "skipped" says nothing about the gate either way.
bool passing(Verdict v) {
  return v == Verdict::pass || v == Verdict::warn;
}
bool live_status(std::string_view status) {
  return status != "sealed" && status != "awaiting_approval" && status != "unreadable" && status != "fenced";
}

int64_t ms_or(const std::string& iso, int64_t fallback) {
  if (iso.empty()) return fallback;
  int64_t ms = core::parse_iso_ms(iso);
  return ms < 0 ? fallback : ms;
}

}  // namespace

struct RunStats::Impl {
  // (a time or a duration, the run's sequence number): unique per run, ordered by the first; slot_of_seq
  // names the run. Sorted arrays, not trees: 12 bytes a key (packed: a million runs hold seven million of
  // them) where a tree node costs five times that, and runs arrive nearly in time order, so an insert is
  // nearly always an append.
#pragma pack(push, 4)
  struct Key {
    int64_t at;
    uint32_t seq;
    bool operator<(const Key& o) const { return at != o.at ? at < o.at : seq < o.seq; }
    bool operator==(const Key& o) const { return at == o.at && seq == o.seq; }
  };
#pragma pack(pop)
  static_assert(sizeof(Key) == 12);
  using Keys = std::vector<Key>;
  // What one run added, so that a re-read summary can take exactly that back out. 40 bytes a run.
  struct Contribution {
    int64_t end_ms = 0;  // finished_at, else created_at: the time of its gate results and of its end
    int64_t duration_ms = -1;
    uint32_t seq = 0, status = 0, verdict = 0;  // status and verdict: codes in `names`
    uint32_t gates = 0;                         // offset in gate_pool of its (gate number, verdict) pairs
    uint8_t ngates = 0;
    bool used = false, finished = false, succeeded = false, live = false, awaiting = false;
  };
  struct Gate {
    std::string id;
    long long fail = 0, error = 0, results = 0;  // results 0: no run holds it now
    Keys failures, passes;
  };

  std::vector<Contribution> runs;  // by slot
  std::vector<uint32_t> free_slots;
  std::vector<uint32_t> slot_of_seq{0};  // by sequence number (0: none)
  std::string id_arena;
  std::vector<std::pair<uint32_t, uint16_t>> id_at;  // by slot: offset and length of the run id
  IdSlots ids;
  long long count = 0;
  uint32_t next_seq = 1;
  std::vector<std::string> names{""};  // status and verdict texts, by code
  std::unordered_map<std::string, uint32_t, ViewHash, std::equal_to<>> name_code;
  std::vector<long long> state_counts{0}, verdict_counts{0};  // by code
  Keys finished, succeeded, durations;
  std::vector<uint32_t> gate_pool;  // gate number << 3 | verdict
  std::vector<Gate> gates;          // by gate number; gate ids are few, so they are numbered once
  std::unordered_map<std::string, uint32_t, ViewHash, std::equal_to<>> gate_number;
  std::map<std::string, LiveRun> live;
  std::map<std::string, AwaitingRun> awaiting;
  std::set<std::pair<int64_t, std::string>> deadlines;  // awaiting runs with a deadline
  bool bulk = false;                                    // keys are appended and sorted once at the end
  bool keys_dirty = false;                              // keys were appended out of order

  std::string_view id_of_slot(uint32_t slot) const {
    return {id_arena.data() + id_at[slot].first, id_at[slot].second};
  }
  std::string run_id(uint32_t slot) const {
    return std::string(id_of_slot(slot));
  }
  // The removed runs' ids are given back once they are most of the arena (a long-lived serve's retention).
  size_t arena_dead = 0;
  void drop_id(uint32_t slot) {
    arena_dead += id_at[slot].second;
    id_at[slot] = {0, 0};
    if (arena_dead <= (1u << 20) || arena_dead * 2 <= id_arena.size()) return;
    std::string packed;
    packed.reserve(id_arena.size() - arena_dead);
    for (uint32_t s = 0; s < runs.size(); ++s) {
      if (!runs[s].used) continue;
      const auto at = static_cast<uint32_t>(packed.size());
      packed.append(id_of_slot(s));
      id_at[s].first = at;
    }
    id_arena.swap(packed);
    arena_dead = 0;
  }
  std::string run_of(const Key& k) const {
    return run_id(slot_of_seq[k.seq]);
  }

  uint32_t name(std::string_view s) {
    if (auto it = name_code.find(s); it != name_code.end()) return it->second;
    const auto code = static_cast<uint32_t>(names.size());
    names.emplace_back(s);
    state_counts.push_back(0);
    verdict_counts.push_back(0);
    name_code.emplace(std::string(s), code);
    return code;
  }

  uint32_t number_of(std::string_view gate) {
    if (auto it = gate_number.find(gate); it != gate_number.end()) return it->second;
    const auto number = static_cast<uint32_t>(gates.size());
    gates.push_back(Gate{std::string(gate), 0, 0, 0, {}, {}});
    gate_number.emplace(std::string(gate), number);
    return number;
  }

  void add_key(Keys& keys, Key k) {
    if (keys.empty() || keys.back() < k) {
      keys.push_back(k);
    } else if (bulk) {
      keys.push_back(k);
      keys_dirty = true;
    } else {
      keys.insert(std::upper_bound(keys.begin(), keys.end(), k), k);
    }
  }
  void drop_key(Keys& keys, Key k) {
    auto it = std::lower_bound(keys.begin(), keys.end(), k);
    if (it != keys.end() && *it == k) keys.erase(it);
  }

  std::optional<uint32_t> find(std::string_view id) const {
    return ids.find(id, [this](uint32_t s) { return id_of_slot(s); });
  }

  uint32_t add_run(const std::string& id) {
    uint32_t slot;
    if (!free_slots.empty()) {
      slot = free_slots.back();
      free_slots.pop_back();
    } else {
      slot = static_cast<uint32_t>(runs.size());
      runs.emplace_back();
      id_at.emplace_back();
    }
    id_at[slot] = {static_cast<uint32_t>(id_arena.size()), static_cast<uint16_t>(id.size())};
    id_arena += id;
    runs[slot] = Contribution{};
    runs[slot].used = true;
    runs[slot].seq = next_seq++;
    slot_of_seq.push_back(slot);
    ids.add(slot, [this](uint32_t s) { return id_of_slot(s); });
    ++count;
    return slot;
  }

  void take_out(uint32_t slot) {
    Contribution& c = runs[slot];
    --state_counts[c.status];
    if (c.verdict && names[c.status] == "sealed") --verdict_counts[c.verdict];
    if (keys_dirty) sort_keys();  // a re-read during a bulk load: the keys must be in order to be found
    const Key k{c.end_ms, c.seq};
    if (c.finished) drop_key(finished, k);
    if (c.succeeded) drop_key(succeeded, k);
    if (c.duration_ms >= 0) drop_key(durations, Key{c.duration_ms, c.seq});
    for (uint8_t i = 0; i < c.ngates; ++i) {
      const uint32_t number = gate_pool[c.gates + i] >> 3;
      const auto verdict = static_cast<Verdict>(gate_pool[c.gates + i] & 7);
      Gate& g = gates[number];
      --g.results;
      if (verdict == Verdict::fail) --g.fail;
      if (verdict == Verdict::error) --g.error;
      if (failing(verdict)) drop_key(g.failures, k);
      if (passing(verdict)) drop_key(g.passes, k);
    }
    const std::string id = run_id(slot);
    if (c.live) live.erase(id);
    if (c.awaiting) {
      auto a = awaiting.find(id);
      if (a != awaiting.end() && a->second.deadline_ms >= 0) deadlines.erase({a->second.deadline_ms, id});
      if (a != awaiting.end()) awaiting.erase(a);
    }
  }

  // What every run adds: its state, verdict, end, duration and gate results. `Gates` holds (gate id,
  // verdict) pairs of strings or string views.
  template <class Gates>
  void put_core(uint32_t slot, std::string_view status, std::string_view verdict, int64_t end_ms,
                long long duration_ms, const Gates& run_gates) {
    Contribution& c = runs[slot];
    c.status = name(status);
    c.verdict = verdict.empty() ? 0 : name(verdict);
    ++state_counts[c.status];
    const bool sealed = status == "sealed";
    if (sealed && c.verdict) ++verdict_counts[c.verdict];
    c.end_ms = end_ms;
    c.finished = sealed && c.verdict;
    c.succeeded = c.finished && verdict == "success";
    const Key k{c.end_ms, c.seq};
    if (c.finished) add_key(finished, k);
    if (c.succeeded) add_key(succeeded, k);
    c.duration_ms = sealed ? duration_ms : -1;
    if (c.duration_ms >= 0) add_key(durations, Key{c.duration_ms, c.seq});
    // Gate results: written over the run's old ones when they fit, else appended.
    const size_t n = std::min<size_t>(run_gates.size(), 255);
    if (n > c.ngates) {
      c.gates = static_cast<uint32_t>(gate_pool.size());
      gate_pool.resize(gate_pool.size() + n);
    }
    c.ngates = static_cast<uint8_t>(n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t number = number_of(run_gates[i].first);
      const Verdict v = verdict_of(run_gates[i].second);
      gate_pool[c.gates + i] = number << 3 | static_cast<uint32_t>(v);
      Gate& g = gates[number];
      ++g.results;
      if (v == Verdict::fail) ++g.fail;
      if (v == Verdict::error) ++g.error;
      if (failing(v)) add_key(g.failures, k);
      if (passing(v)) add_key(g.passes, k);
    }
    c.live = live_status(status);
    c.awaiting = status == "awaiting_approval";
  }

  // Whether the run would add exactly what it added before (its keys and counts would not move).
  template <class Gates>
  bool same_facts(uint32_t slot, std::string_view status, std::string_view verdict, int64_t end_ms,
                  long long duration_ms, const Gates& run_gates) const {
    const Contribution& c = runs[slot];
    auto code = [this](std::string_view s) -> std::optional<uint32_t> {
      if (s.empty()) return 0u;
      auto it = name_code.find(s);
      if (it == name_code.end()) return std::nullopt;
      return it->second;
    };
    if (code(status) != c.status || code(verdict) != c.verdict || end_ms != c.end_ms ||
        (status == "sealed" ? duration_ms : -1) != c.duration_ms ||
        std::min<size_t>(run_gates.size(), 255) != c.ngates)
      return false;
    for (size_t i = 0; i < c.ngates; ++i) {
      auto g = gate_number.find(run_gates[i].first);
      if (g == gate_number.end() ||
          gate_pool[c.gates + i] != (g->second << 3 | static_cast<uint32_t>(verdict_of(run_gates[i].second))))
        return false;
    }
    return true;
  }

  // A live or waiting run's entry (its last event, its approval's times), with nothing else changed.
  void refresh_waiting(const store::RunSummary& s, uint32_t slot) {
    const Contribution& c = runs[slot];
    if (c.live)
      live[s.run_id] = {s.run_id, s.task_id, s.status,
                        s.events_mtime_ms >= 0 ? s.events_mtime_ms : ms_or(s.created_at, 0)};
    if (c.awaiting) {
      auto a = awaiting.find(s.run_id);
      if (a != awaiting.end() && a->second.deadline_ms >= 0)
        deadlines.erase({a->second.deadline_ms, s.run_id});
      const int64_t deadline_ms = s.approval_deadline.empty() ? -1 : core::parse_iso_ms(s.approval_deadline);
      awaiting[s.run_id] = {s.run_id, s.task_id, s.approval_requested_at, s.approval_deadline, deadline_ms};
      if (deadline_ms >= 0) deadlines.insert({deadline_ms, s.run_id});
    }
  }

  void put_in(const store::RunSummary& s, uint32_t slot) {
    put_core(slot, s.status, s.verdict, ms_or(s.finished_at, ms_or(s.created_at, 0)), s.duration_ms, s.gates);
    refresh_waiting(s, slot);
  }

  // After a bulk fill: every array down to its size (doubling left up to half of each unused).
  void shrink() {
    for (Keys* k : {&finished, &succeeded, &durations}) k->shrink_to_fit();
    for (auto& g : gates) {
      g.failures.shrink_to_fit();
      g.passes.shrink_to_fit();
    }
    runs.shrink_to_fit();
    id_at.shrink_to_fit();
    id_arena.shrink_to_fit();
    gate_pool.shrink_to_fit();
    slot_of_seq.shrink_to_fit();
  }

  void sort_keys() {
    keys_dirty = false;
    auto order = [](Keys& keys) {
      if (!std::is_sorted(keys.begin(), keys.end())) std::sort(keys.begin(), keys.end());
    };
    order(finished);
    order(succeeded);
    order(durations);
    for (auto& g : gates) {
      order(g.failures);
      order(g.passes);
    }
  }
};

RunStats::RunStats() : impl_(std::make_unique<Impl>()) {}
RunStats::~RunStats() = default;

void RunStats::update(const store::RunSummary& s) {
  std::lock_guard l(mu_);
  if (auto slot = impl_->find(s.run_id)) {
    // A run re-read without change (a live or waiting run, every second) keeps its keys where they are:
    // taking them out and back would shift arrays of a million keys twice.
    if (impl_->same_facts(*slot, s.status, s.verdict, ms_or(s.finished_at, ms_or(s.created_at, 0)),
                          s.duration_ms, s.gates)) {
      impl_->refresh_waiting(s, *slot);
      return;
    }
    impl_->take_out(*slot);
    impl_->put_in(s, *slot);
  } else {
    impl_->put_in(s, impl_->add_run(s.run_id));
  }
}

void RunStats::update(const FinalRun& f) {
  std::lock_guard l(mu_);
  auto slot = impl_->find(f.run_id);
  if (slot)
    impl_->take_out(*slot);
  else
    slot = impl_->add_run(std::string(f.run_id));
  impl_->put_core(*slot, f.status, f.verdict, f.end_ms, f.duration_ms, f.gates);
}

void RunStats::remove(const std::string& run_id) {
  std::lock_guard l(mu_);
  auto slot = impl_->find(run_id);
  if (!slot) return;
  impl_->take_out(*slot);
  impl_->ids.remove(*slot, [this](uint32_t s) { return impl_->id_of_slot(s); });
  impl_->runs[*slot].used = false;
  impl_->free_slots.push_back(*slot);
  impl_->drop_id(*slot);
  --impl_->count;
}

void RunStats::begin_bulk(size_t expected) {
  std::lock_guard l(mu_);
  impl_->bulk = true;
  Impl& m = *impl_;
  const size_t n = m.runs.size() + expected;
  m.runs.reserve(n);
  m.id_at.reserve(n);
  m.slot_of_seq.reserve(m.slot_of_seq.size() + expected);
  m.id_arena.reserve(m.id_arena.size() + expected * 16);
  for (Impl::Keys* k : {&m.finished, &m.succeeded, &m.durations}) k->reserve(k->size() + expected);
  m.ids.reserve(m.count + expected, [&m](uint32_t s) { return m.id_of_slot(s); });
}

void RunStats::end_bulk() {
  std::lock_guard l(mu_);
  if (!impl_->bulk) return;
  if (impl_->keys_dirty) impl_->sort_keys();
  impl_->shrink();
  impl_->bulk = false;
}

long long RunStats::total() const {
  std::lock_guard l(mu_);
  return impl_->count;
}

std::map<std::string, long long> RunStats::by_state() const {
  std::lock_guard l(mu_);
  std::map<std::string, long long> out;
  for (size_t c = 0; c < impl_->names.size(); ++c)
    if (impl_->state_counts[c] != 0) out[impl_->names[c]] = impl_->state_counts[c];
  return out;
}

std::map<std::string, long long> RunStats::by_verdict() const {
  std::lock_guard l(mu_);
  std::map<std::string, long long> out;
  for (size_t c = 0; c < impl_->names.size(); ++c)
    if (impl_->verdict_counts[c] != 0) out[impl_->names[c]] = impl_->verdict_counts[c];
  return out;
}

FinishedWindow RunStats::finished_since(int64_t since_ms) const {
  std::lock_guard l(mu_);
  const Impl::Key from{since_ms, 0};
  auto at_or_after = [&](const Impl::Keys& keys) {
    return static_cast<long long>(keys.end() - std::lower_bound(keys.begin(), keys.end(), from));
  };
  FinishedWindow w;
  w.finished = at_or_after(impl_->finished);
  w.succeeded = at_or_after(impl_->succeeded);
  return w;
}

DurationPercentiles RunStats::durations() const {
  std::lock_guard l(mu_);
  DurationPercentiles d;
  const auto n = impl_->durations.size();
  d.runs = static_cast<long long>(n);
  if (n == 0) return d;
  auto at = [&](size_t p) {
    size_t rank = (p * n + 99) / 100;  // ceil(p/100 * n), at least 1
    return impl_->durations[std::max<size_t>(rank, 1) - 1].at;
  };
  d.p50 = at(50);
  d.p95 = at(95);
  return d;
}

std::vector<GateTally> RunStats::top_failing_gates(size_t n) const {
  std::lock_guard l(mu_);
  std::vector<GateTally> all;
  for (const auto& g : impl_->gates) {
    if (g.fail + g.error == 0) continue;
    GateTally t{g.id, g.fail, g.error, g.results, {}, -1};
    if (!g.failures.empty()) {
      const Impl::Key& newest = g.failures.back();
      t.last_failure_ms = newest.at;
      t.last_failed_run = impl_->run_of(newest);
    }
    all.push_back(std::move(t));
  }
  auto more = [](const GateTally& a, const GateTally& b) {
    return a.failures() != b.failures() ? a.failures() > b.failures() : a.gate_id < b.gate_id;
  };
  const size_t k = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), more);
  all.resize(k);
  return all;
}

std::vector<FailingGate> RunStats::failing_gates(long long in_a_row, long long in_window,
                                                 int64_t window_start_ms) const {
  std::lock_guard l(mu_);
  std::vector<FailingGate> out;
  for (const auto& g : impl_->gates) {
    if (g.failures.empty()) continue;
    FailingGate f;
    f.gate_id = g.id;
    f.last_failure_ms = g.failures.back().at;
    f.last_failed_run = impl_->run_of(g.failures.back());
    // The streak: failures newer than the newest pass, counted up to the threshold.
    const bool any_pass = !g.passes.empty();
    const Impl::Key last_pass = any_pass ? g.passes.back() : Impl::Key{};
    if (in_a_row > 0) {
      for (auto it = g.failures.rbegin(); it != g.failures.rend() && f.in_a_row < in_a_row; ++it) {
        if (any_pass && *it < last_pass) break;
        ++f.in_a_row;
      }
      if (f.in_a_row >= in_a_row) {  // it reached the threshold at the streak's in_a_row-th failure
        auto first =
            any_pass ? std::upper_bound(g.failures.begin(), g.failures.end(), last_pass) : g.failures.begin();
        f.since_ms = std::next(first, static_cast<std::ptrdiff_t>(in_a_row - 1))->at;
      }
    }
    if (in_window > 0) {
      auto it = std::lower_bound(g.failures.begin(), g.failures.end(), Impl::Key{window_start_ms, 0});
      int64_t reached = -1;
      for (; it != g.failures.end() && f.in_window < in_window; ++it) {
        ++f.in_window;
        reached = it->at;
      }
      if (f.in_window >= in_window && f.since_ms < 0) f.since_ms = reached;
    }
    if (f.since_ms >= 0) out.push_back(std::move(f));
  }
  return out;
}

std::vector<LiveRun> RunStats::quiet_runs(int64_t before_ms) const {
  std::lock_guard l(mu_);
  std::vector<LiveRun> out;
  for (const auto& [id, r] : impl_->live)
    if (r.last_event_ms < before_ms) out.push_back(r);
  return out;
}

long long RunStats::live_runs() const {
  std::lock_guard l(mu_);
  return static_cast<long long>(impl_->live.size());
}

std::vector<AwaitingRun> RunStats::awaiting_by_deadline(int64_t until_ms, size_t limit) const {
  std::lock_guard l(mu_);
  std::vector<AwaitingRun> out;
  for (const auto& [ms, id] : impl_->deadlines) {
    if (ms > until_ms || out.size() >= limit) break;
    out.push_back(impl_->awaiting.at(id));
  }
  return out;
}

}  // namespace cp::serve
