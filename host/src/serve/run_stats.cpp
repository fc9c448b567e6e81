#include "serve/run_stats.hpp"

#include "core/clock.hpp"

#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>

#include <algorithm>
#include <iterator>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>

namespace cp::serve {

namespace {

// (a time or a duration, the run's sequence number): unique per run, ordered by the first.
using Key = std::pair<int64_t, uint64_t>;
// An order-statistic tree: rank and k-th element in O(log n), so window counts and percentiles never walk.
using RankedKeys = __gnu_pbds::tree<Key, __gnu_pbds::null_type, std::less<Key>, __gnu_pbds::rb_tree_tag,
                                    __gnu_pbds::tree_order_statistics_node_update>;

// A gate verdict in one byte (a run's gate results are held for every run the root has).
enum class Verdict : uint8_t { other, pass, warn, fail, error };
Verdict verdict_of(const std::string& v) {
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
bool live_status(const std::string& status) {
  return status != "sealed" && status != "awaiting_approval" && status != "unreadable" && status != "fenced";
}

int64_t ms_or(const std::string& iso, int64_t fallback) {
  if (iso.empty()) return fallback;
  int64_t ms = core::parse_iso_ms(iso);
  return ms < 0 ? fallback : ms;
}

}  // namespace

struct RunStats::Impl {
  // What one run added, so that a re-read summary can take exactly that back out.
  struct Contribution {
    uint64_t seq = 0;
    std::string status, verdict;
    int64_t end_ms = 0;  // finished_at, else created_at: the time of its gate results and of its end
    bool finished = false, succeeded = false;
    long long duration_ms = -1;
    std::vector<std::pair<uint32_t, Verdict>> gates;  // (gate number, verdict)
    bool live = false, awaiting = false;
    int64_t deadline_ms = -1;
  };
  struct Gate {
    std::string id;
    long long fail = 0, error = 0, results = 0;  // results 0: no run holds it now
    std::set<Key> failures, passes;
  };

  std::unordered_map<std::string, Contribution> runs;
  std::unordered_map<uint64_t, const std::string*> id_of;  // seq -> run id (the key in `runs`)
  uint64_t next_seq = 1;
  std::map<std::string, long long> states, verdicts;
  RankedKeys finished, succeeded, durations;
  std::vector<Gate> gates;  // by gate number; gate ids are few, so they are numbered once
  std::unordered_map<std::string, uint32_t> gate_number;
  std::map<std::string, LiveRun> live;
  std::map<std::string, AwaitingRun> awaiting;
  std::set<std::pair<int64_t, std::string>> deadlines;  // awaiting runs with a deadline

  std::string run_id(uint64_t seq) const {
    auto it = id_of.find(seq);
    return it == id_of.end() ? std::string() : *it->second;
  }

  uint32_t number_of(const std::string& gate) {
    auto [it, fresh] = gate_number.try_emplace(gate, static_cast<uint32_t>(gates.size()));
    if (fresh) gates.push_back(Gate{gate, 0, 0, 0, {}, {}});
    return it->second;
  }

  static void count(std::map<std::string, long long>& m, const std::string& k, long long d) {
    if ((m[k] += d) == 0) m.erase(k);
  }

  void take_out(const std::string& id, const Contribution& c) {
    count(states, c.status, -1);
    if (c.status == "sealed" && !c.verdict.empty()) count(verdicts, c.verdict, -1);
    if (c.finished) finished.erase({c.end_ms, c.seq});
    if (c.succeeded) succeeded.erase({c.end_ms, c.seq});
    if (c.duration_ms >= 0) durations.erase({c.duration_ms, c.seq});
    for (const auto& [number, verdict] : c.gates) {
      Gate& g = gates[number];
      --g.results;
      if (verdict == Verdict::fail) --g.fail;
      if (verdict == Verdict::error) --g.error;
      g.failures.erase({c.end_ms, c.seq});
      g.passes.erase({c.end_ms, c.seq});
    }
    if (c.live) live.erase(id);
    if (c.awaiting) {
      awaiting.erase(id);
      if (c.deadline_ms >= 0) deadlines.erase({c.deadline_ms, id});
    }
  }

  void put_in(const store::RunSummary& s, Contribution& c) {
    c.status = s.status;
    c.verdict = s.verdict;
    count(states, c.status, +1);
    const bool sealed = s.status == "sealed";
    if (sealed && !c.verdict.empty()) count(verdicts, c.verdict, +1);
    c.end_ms = ms_or(s.finished_at, ms_or(s.created_at, 0));
    c.finished = sealed && !c.verdict.empty();
    c.succeeded = c.finished && c.verdict == "success";
    if (c.finished) finished.insert({c.end_ms, c.seq});
    if (c.succeeded) succeeded.insert({c.end_ms, c.seq});
    c.duration_ms = sealed ? s.duration_ms : -1;
    if (c.duration_ms >= 0) durations.insert({c.duration_ms, c.seq});
    c.gates.clear();
    c.gates.reserve(s.gates.size());
    for (const auto& [gate, text] : s.gates) {
      const uint32_t number = number_of(gate);
      const Verdict verdict = verdict_of(text);
      c.gates.emplace_back(number, verdict);
      Gate& g = gates[number];
      ++g.results;
      if (verdict == Verdict::fail) ++g.fail;
      if (verdict == Verdict::error) ++g.error;
      if (failing(verdict)) g.failures.insert({c.end_ms, c.seq});
      if (passing(verdict)) g.passes.insert({c.end_ms, c.seq});
    }
    c.live = live_status(s.status);
    if (c.live)
      live[s.run_id] = {s.run_id, s.task_id, s.status,
                        s.events_mtime_ms >= 0 ? s.events_mtime_ms : ms_or(s.created_at, 0)};
    c.awaiting = s.status == "awaiting_approval";
    if (c.awaiting) {
      c.deadline_ms = s.approval_deadline.empty() ? -1 : core::parse_iso_ms(s.approval_deadline);
      awaiting[s.run_id] = {s.run_id, s.task_id, s.approval_requested_at, s.approval_deadline, c.deadline_ms};
      if (c.deadline_ms >= 0) deadlines.insert({c.deadline_ms, s.run_id});
    }
  }
};

RunStats::RunStats() : impl_(std::make_unique<Impl>()) {}
RunStats::~RunStats() = default;

void RunStats::update(const store::RunSummary& s) {
  std::lock_guard l(mu_);
  auto [it, fresh] = impl_->runs.try_emplace(s.run_id);
  if (fresh) {
    it->second.seq = impl_->next_seq++;
    impl_->id_of[it->second.seq] = &it->first;
  } else {
    impl_->take_out(s.run_id, it->second);
  }
  impl_->put_in(s, it->second);
}

void RunStats::remove(const std::string& run_id) {
  std::lock_guard l(mu_);
  auto it = impl_->runs.find(run_id);
  if (it == impl_->runs.end()) return;
  impl_->take_out(run_id, it->second);
  impl_->id_of.erase(it->second.seq);
  impl_->runs.erase(it);
}

long long RunStats::total() const {
  std::lock_guard l(mu_);
  return static_cast<long long>(impl_->runs.size());
}

std::map<std::string, long long> RunStats::by_state() const {
  std::lock_guard l(mu_);
  return impl_->states;
}

std::map<std::string, long long> RunStats::by_verdict() const {
  std::lock_guard l(mu_);
  return impl_->verdicts;
}

FinishedWindow RunStats::finished_since(int64_t since_ms) const {
  std::lock_guard l(mu_);
  const Key from{since_ms, 0};
  FinishedWindow w;
  w.finished = static_cast<long long>(impl_->finished.size() - impl_->finished.order_of_key(from));
  w.succeeded = static_cast<long long>(impl_->succeeded.size() - impl_->succeeded.order_of_key(from));
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
    return impl_->durations.find_by_order(std::max<size_t>(rank, 1) - 1)->first;
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
      const Key& newest = *g.failures.rbegin();
      t.last_failure_ms = newest.first;
      t.last_failed_run = impl_->run_id(newest.second);
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
    f.last_failure_ms = g.failures.rbegin()->first;
    f.last_failed_run = impl_->run_id(g.failures.rbegin()->second);
    // The streak: failures newer than the newest pass, counted up to the threshold.
    const bool any_pass = !g.passes.empty();
    const Key last_pass = any_pass ? *g.passes.rbegin() : Key{};
    if (in_a_row > 0) {
      for (auto it = g.failures.rbegin(); it != g.failures.rend() && f.in_a_row < in_a_row; ++it) {
        if (any_pass && *it < last_pass) break;
        ++f.in_a_row;
      }
      if (f.in_a_row >= in_a_row) {  // it reached the threshold at the streak's in_a_row-th failure
        auto first = any_pass ? g.failures.upper_bound(last_pass) : g.failures.begin();
        f.since_ms = std::next(first, static_cast<std::ptrdiff_t>(in_a_row - 1))->first;
      }
    }
    if (in_window > 0) {
      auto it = g.failures.lower_bound({window_start_ms, 0});
      int64_t reached = -1;
      for (; it != g.failures.end() && f.in_window < in_window; ++it) {
        ++f.in_window;
        reached = it->first;
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
