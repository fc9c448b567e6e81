#include "serve/run_catalog.hpp"
#include "core/runtime_paths.hpp"

#include "store/bundle.hpp"

#include "core/clock.hpp"
#include "serve/event_feed.hpp"
#include "serve/run_index_file.hpp"

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <limits>
#include <mutex>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// "fenced": a copy of another node's run that lost its lease (serve/run_replicas.hpp): never sealed.
bool is_final(const std::string& status) {
  return status == "sealed" || status == "unreadable" || status == "fenced";
}

// A cursor is the key of the last run of a page, hex-encoded so it survives any query string.
std::string encode_cursor(const std::string& created_at, const std::string& run_id) {
  static const char* hex = "0123456789abcdef";
  std::string raw = created_at + "|" + run_id, out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> decode_cursor(const std::string& cur) {
  if (cur.size() % 2 || cur.size() > 1024) return std::nullopt;
  std::string raw;
  for (size_t i = 0; i < cur.size(); i += 2) {
    auto val = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = val(cur[i]), lo = val(cur[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    raw += static_cast<char>(hi * 16 + lo);
  }
  auto bar = raw.find('|');
  if (bar == std::string::npos) return std::nullopt;
  return std::make_pair(raw.substr(0, bar), raw.substr(bar + 1));
}

constexpr long long kLiveLast = std::numeric_limits<long long>::max();

}  // namespace

RunCatalog::RunCatalog(fs::path root, CatalogIndex index)
    : root_(std::move(root)), runs_(core::runs_dir(root_)), index_(std::move(index)) {}

std::optional<RunCatalog::Read> RunCatalog::read_entry(const std::string& run_id) const {
  const fs::path dir = runs_ / run_id;
  // The stamp is taken before the read: a manifest that changes in between differs from it at the next check.
  Read e;
  e.stamp = manifest_stamp(dir / "manifest.json");
  auto s = store::read_run_summary(dir, run_id);
  if (!s) return std::nullopt;
  e.summary = std::move(*s);
  const std::string& st = e.summary.status;
  e.live = !is_final(st) && st != "awaiting_approval";
  if (!e.live) {
    // A run's events lie between its creation and its last event; only a finished run's last is fixed.
    long long first =
        e.summary.created_at.empty() ? 0 : std::max<long long>(0, core::parse_iso_ms(e.summary.created_at));
    e.last_ms = std::max(last_event_ms(dir / "events.jsonl"), first);
  }
  return e;
}

bool RunCatalog::later(uint32_t a, uint32_t b) const {
  const auto& x = table_.row(a);
  const auto& y = table_.row(b);
  if (x.last_ms != y.last_ms) return x.last_ms > y.last_ms;
  return table_.run_id(a) > table_.run_id(b);
}

void RunCatalog::order_insert(uint32_t r) {
  if (bulk_) return;  // sorted once at the end
  auto older = [this](uint32_t a, uint32_t b) { return table_.older(a, b); };
  // New runs are nearly always the newest: appending is the common case.
  if (order_.empty() || older(order_.back(), r))
    order_.push_back(r);
  else
    order_.insert(std::upper_bound(order_.begin(), order_.end(), r, older), r);
  auto later_fn = [this](uint32_t a, uint32_t b) { return later(a, b); };
  by_last_.insert(std::upper_bound(by_last_.begin(), by_last_.end(), r, later_fn), r);
}

void RunCatalog::order_erase(uint32_t r) {
  if (bulk_) return;
  auto drop = [r](std::vector<uint32_t>& v, std::vector<uint32_t>::iterator at) {
    if (at == v.end() || *at != r) at = std::find(v.begin(), v.end(), r);  // never expected; stays correct
    if (at != v.end()) v.erase(at);
  };
  drop(order_, std::lower_bound(order_.begin(), order_.end(), r,
                                [this](uint32_t a, uint32_t b) { return table_.older(a, b); }));
  drop(by_last_, std::lower_bound(by_last_.begin(), by_last_.end(), r,
                                  [this](uint32_t a, uint32_t b) { return later(a, b); }));
}

void RunCatalog::sort_orders() {
  order_.clear();
  for (uint32_t r = 0; r < table_.capacity(); ++r)
    if (!(table_.row(r).flags & RunTable::kDead)) order_.push_back(r);
  by_last_ = order_;
  std::sort(order_.begin(), order_.end(), [this](uint32_t a, uint32_t b) { return table_.older(a, b); });
  std::sort(by_last_.begin(), by_last_.end(), [this](uint32_t a, uint32_t b) { return later(a, b); });
}

void RunCatalog::put(Read e) {
  const store::RunSummary& s = e.summary;
  const long long last = e.live ? kLiveLast : e.last_ms;
  if (auto found = table_.find(s.run_id)) {
    const uint32_t r = *found;
    const RunTable::Row old = table_.row(r);
    // The orders move only when the run's place in them does: a live run re-read each second stays put.
    const bool moves = old.last_ms != last || table_.created_text(r) != s.created_at;
    if (moves) order_erase(r);
    table_.put(s, last, e.stamp, r);
    if (moves) order_insert(r);
    const RunTable::Row& now = table_.row(r);
    if (old.status != now.status || std::memcmp(old.code, now.code, sizeof old.code) != 0 ||
        std::memcmp(old.num, now.num, sizeof old.num) != 0 || old.flags != now.flags)
      ++generation_;
  } else {
    order_insert(table_.put(s, last, e.stamp));
    ++generation_;
  }
  stats_.update(s);
  if (is_final(s.status))
    open_.erase(s.run_id);
  else
    open_.insert(s.run_id);
  ++changed_;
}

void RunCatalog::erase(const std::string& run_id) {
  auto found = table_.find(run_id);
  if (!found) return;
  order_erase(*found);
  table_.remove(*found);
  open_.erase(run_id);
  ++generation_;
  stats_.remove(run_id);
  ++changed_;
}

RunSpan RunCatalog::span_of(uint32_t r) const {
  RunSpan s;
  s.run_id = std::string(table_.run_id(r));
  s.dir = runs_ / s.run_id;
  s.workflow_id = table_.text(r, RunTable::workflow_id);
  s.first_ms = table_.created_ms(r);
  s.live = table_.row(r).flags & RunTable::kLive;
  s.last_ms = table_.row(r).last_ms;
  return s;
}

std::vector<RunSpan> RunCatalog::spans_by_last_event(
    const std::optional<std::pair<long long, std::string>>& after, size_t n) const {
  std::shared_lock l(mu_);
  auto it = by_last_.begin();
  if (after)  // the first run strictly after (last_ms, id) in newest-first order
    it = std::partition_point(by_last_.begin(), by_last_.end(), [&](uint32_t r) {
      const long long last = table_.row(r).last_ms;
      return last != after->first ? last > after->first : table_.run_id(r) >= after->second;
    });
  std::vector<RunSpan> out;
  for (; it != by_last_.end() && out.size() < n; ++it) out.push_back(span_of(*it));
  return out;
}

std::optional<RunSpan> RunCatalog::span(const std::string& run_id) const {
  std::shared_lock l(mu_);
  auto r = table_.find(run_id);
  if (!r) return std::nullopt;
  return span_of(*r);
}

void RunCatalog::update(const std::string& run_id) {
  if (!store::valid_run_id(run_id)) return;
  auto e = read_entry(run_id);
  std::unique_lock l(mu_);
  if (e)
    put(std::move(*e));
  else
    erase(run_id);
}

std::string RunCatalog::runs_stamp() const {
  // The folder is listed again when it changed: its mtime, and its ctime and inode too, which no one can
  // set back (a `touch -d` that restores the mtime after a run was taken away still moves the ctime).
  struct stat st {};
  if (::stat(runs_.c_str(), &st) != 0)
    // No runs folder (yet, or any more): a stamp of its own, so that runs held from the index or from an
    // earlier listing are dropped by the next listing, which finds none.
    return errno == ENOENT ? "absent" : "";
  return std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) + '/' +
         std::to_string(st.st_ctim.tv_sec) + '.' + std::to_string(st.st_ctim.tv_nsec) + '/' +
         std::to_string(st.st_ino);
}

void RunCatalog::take_in(std::vector<Read> fresh, const std::vector<std::string>& gone) {
  // Many runs come or go at once (the first build, a restored root): the orders are sorted once, not
  // shifted per run. Runs re-read in place (the live ones, every refresh) do not count.
  size_t moved = gone.size();
  for (const auto& e : fresh) moved += table_.find(e.summary.run_id) ? 0 : 1;
  bulk_ = moved > 256;
  if (bulk_) stats_.begin_bulk(moved);
  for (auto& e : fresh) put(std::move(e));
  for (const auto& id : gone) erase(id);
  if (bulk_) {
    sort_orders();
    table_.shrink();
    stats_.end_bulk();
    bulk_ = false;
  }
}

CatalogStart RunCatalog::start() {
  CatalogStart out;
  if (!index_.file.empty()) {
    std::string why;
    if (auto image = load_run_index(index_.file, why)) {
      std::unique_lock l(mu_);
      table_ = std::move(image->table);
      runs_mtime_ = std::move(image->runs_stamp);
      // The saved orders are used when they are in order (one comparison a row), else sorted again.
      order_ = std::move(image->order);
      by_last_ = std::move(image->by_last);
      auto older = [this](uint32_t a, uint32_t b) { return table_.older(a, b); };
      auto later_fn = [this](uint32_t a, uint32_t b) { return later(a, b); };
      if (order_.size() != table_.capacity() || !std::is_sorted(order_.begin(), order_.end(), older) ||
          !std::is_sorted(by_last_.begin(), by_last_.end(), later_fn))
        sort_orders();
      // Oldest first, so that the aggregates' time keys arrive nearly in order; final runs without a
      // summary built (a million strings), the others as summaries.
      stats_.begin_bulk(order_.size());
      FinalRun f;
      for (uint32_t r : order_) {
        const auto& row = table_.row(r);
        ++out.indexed;
        if (!(row.flags & RunTable::kFinal)) {
          open_.insert(std::string(table_.run_id(r)));
          stats_.update(table_.summary(r));
          continue;
        }
        f.run_id = table_.run_id(r);
        f.status = table_.status(r);
        f.verdict = table_.str(row.code[RunTable::verdict]);
        f.end_ms = table_.time_ms(r, RunTable::finished_at, table_.time_ms(r, RunTable::created_at, 0));
        f.duration_ms = table_.duration(r);
        f.gates.clear();
        const RunTable::GateResult* g = table_.gate_results(r);
        for (uint8_t k = 0; k < row.ngates; ++k)
          f.gates.emplace_back(table_.gate_name(g[k].gate), table_.str(g[k].verdict));
        stats_.update(f);
      }
      stats_.end_bulk();
      check_next_ = 0;
      check_end_ = table_.capacity();
      out.from_index = true;
    } else if (why != "missing") {
      out.index_problem = why;
    }
  }
  refresh_impl(&out);
  // Filling left freed buffers (the file read, arrays grown by doubling) inside the heap: give them back.
  ::malloc_trim(0);
  if (!index_.file.empty() && !out.from_index) {
    try {
      save_index();  // so that the next start reads one file
    } catch (const std::exception& e) {
      out.index_problem += (out.index_problem.empty() ? "" : "; ") + std::string("saving: ") + e.what();
    }
  }
  return out;
}

void RunCatalog::refresh() {
  refresh_impl(nullptr);
  check_stamps();
  save_if_due();
}

void RunCatalog::refresh_impl(CatalogStart* out) {
  const std::string mtime = runs_stamp();
  std::error_code ec;
  std::vector<std::string> unsealed;
  bool relist = false;
  {
    std::shared_lock l(mu_);
    relist = !mtime.empty() && mtime != runs_mtime_;
    unsealed.assign(open_.begin(), open_.end());
  }
  // Reading happens outside the lock; only the swaps are under it.
  std::vector<Read> fresh;
  std::vector<std::string> gone;
  for (const auto& id : unsealed) {
    auto e = read_entry(id);
    if (e)
      fresh.push_back(std::move(*e));
    else
      gone.push_back(id);
  }
  if (relist) {
    std::vector<std::string> names;
    for (const auto& d : fs::directory_iterator(runs_, ec)) {
      std::string name = d.path().filename().string();
      if (!store::valid_run_id(name)) continue;  // not a run, as store::list_runs decides
      names.push_back(std::move(name));
    }
    {
      std::shared_lock l(mu_);
      std::unordered_set<std::string_view> on_disk(names.begin(), names.end());
      for (uint32_t r = 0; r < table_.capacity(); ++r)
        if (!(table_.row(r).flags & RunTable::kDead) && !on_disk.count(table_.run_id(r)))
          gone.emplace_back(table_.run_id(r));
      std::vector<std::string> added;
      for (auto& n : names)
        if (!table_.find(n)) added.push_back(std::move(n));
      names.swap(added);
    }
    for (const auto& n : names)
      if (auto e = read_entry(n)) fresh.push_back(std::move(*e));
    if (out) out->listed = true;
  }
  if (out) out->read += fresh.size();
  std::unique_lock l(mu_);
  take_in(std::move(fresh), gone);
  if (relist) runs_mtime_ = mtime;
}

size_t RunCatalog::unchecked() const {
  size_t next = check_next_.load(), end = check_end_.load();
  return end > next ? end - next : 0;
}

void RunCatalog::check_stamps() {
  const size_t begin = check_next_.load(), stop = check_end_.load();
  if (begin >= stop) return;
  const size_t end = std::min(stop, begin + std::max<size_t>(index_.checks_per_refresh, 1));
  std::vector<std::pair<std::string, uint64_t>> batch;
  {
    std::shared_lock l(mu_);
    for (size_t r = begin; r < end && r < table_.capacity(); ++r) {
      const auto& row = table_.row(static_cast<uint32_t>(r));
      // A run not final yet is re-read at every refresh anyway.
      if (!(row.flags & RunTable::kDead) && (row.flags & RunTable::kFinal))
        batch.emplace_back(std::string(table_.run_id(static_cast<uint32_t>(r))), row.stamp);
    }
  }
  std::vector<Read> fresh;
  std::vector<std::string> gone;
  for (const auto& [id, stamp] : batch) {
    // 0 is no manifest (or a link): never taken as unchanged, so a row whose folder is gone is dropped.
    const uint64_t now = manifest_stamp(runs_ / id / "manifest.json");
    if (now != 0 && now == stamp) continue;
    if (auto e = read_entry(id))
      fresh.push_back(std::move(*e));
    else
      gone.push_back(id);
  }
  stale_ += fresh.size() + gone.size();
  if (!fresh.empty() || !gone.empty()) {
    std::unique_lock l(mu_);
    take_in(std::move(fresh), gone);
  }
  check_next_ = end;
  if (end == stop)
    std::cerr << "cp-host serve: checked " << stop << " indexed runs against their manifests; " << stale_
              << " had changed and were read again\n";
}

void RunCatalog::save_if_due() {
  if (index_.file.empty() || changed_.load() == 0) return;
  {
    std::lock_guard g(save_mu_);
    if (std::chrono::steady_clock::now() - saved_at_ < index_.save_every) return;
  }
  try {
    save_index();
  } catch (const std::exception& e) {
    std::cerr << "cp-host serve: the run index could not be saved: " << e.what() << "\n";
  }
}

void RunCatalog::save_index() {
  if (index_.file.empty()) return;
  std::lock_guard g(save_mu_);
  std::shared_lock l(mu_);
  const size_t changes = changed_.load();
  save_run_index(index_.file, table_, runs_mtime_, order_, by_last_);
  changed_ -= changes;
  saved_at_ = std::chrono::steady_clock::now();
}

std::optional<RunPage> RunCatalog::list(const RunFilter& f, size_t limit, const std::string& cursor) const {
  std::shared_lock l(mu_);
  auto older_than = [&](const std::string& created, const std::string& id) {
    return static_cast<size_t>(
        std::partition_point(order_.begin(), order_.end(),
                             [&](uint32_t r) { return table_.older_than_key(r, created, id); }) -
        order_.begin());
  };
  size_t i = order_.size();  // newest first: the walk goes down from here
  if (!cursor.empty()) {
    auto k = decode_cursor(cursor);
    if (!k) return std::nullopt;
    i = older_than(k->first, k->second);
  }
  RunPage page;
  auto screen = table_.screen(f);
  if (!screen) return page;  // a value no run has
  // Newest first: nothing created before `since` can match, so the walk ends there.
  size_t stop = 0;
  if (!screen->since.empty()) {
    stop = static_cast<size_t>(
        std::partition_point(order_.begin(), order_.end(),
                             [&](uint32_t r) { return table_.created_text(r) < screen->since; }) -
        order_.begin());
    screen->since.clear();
  }
  std::optional<uint32_t> last;
  bool more = false;
  while (i > stop) {
    const uint32_t r = order_[--i];
    if (!table_.matches(r, *screen)) continue;
    if (page.runs.size() == limit) {
      more = true;  // another run matches: there is a next page
      break;
    }
    page.runs.push_back(table_.fields(r));
    last = r;
  }
  if (more && last)
    page.next_cursor = encode_cursor(table_.created_text(*last), std::string(table_.run_id(*last)));
  return page;
}

std::optional<GateResultPage> RunCatalog::gate_results(const std::string& gate_id, const std::string& verdict,
                                                       size_t limit, const std::string& cursor) const {
  std::shared_lock l(mu_);
  size_t i = order_.size();
  if (!cursor.empty()) {
    auto k = decode_cursor(cursor);
    if (!k) return std::nullopt;
    i = static_cast<size_t>(
        std::partition_point(order_.begin(), order_.end(),
                             [&](uint32_t r) { return table_.older_than_key(r, k->first, k->second); }) -
        order_.begin());
  }
  GateResultPage page;
  auto gate = table_.gate_code(gate_id);
  std::optional<uint32_t> wanted;
  if (!verdict.empty()) wanted = table_.string_code(verdict);
  if (!gate || (!verdict.empty() && !wanted)) return page;
  std::optional<uint32_t> last;
  while (i > 0) {
    const uint32_t r = order_[--i];
    const RunTable::GateResult* g = table_.gate_results(r);
    const RunTable::GateResult* end = g + table_.row(r).ngates;
    g = std::find_if(g, end, [&](const RunTable::GateResult& x) { return x.gate == *gate; });
    if (g == end || (wanted && g->verdict != *wanted)) continue;
    if (page.results.size() == limit) {
      // Another run matches: there is a next page, which starts after the last one given.
      page.next_cursor = encode_cursor(table_.created_text(*last), std::string(table_.run_id(*last)));
      break;
    }
    page.results.push_back(
        {table_.fields(r), std::string(table_.str(g->verdict)), runs_ / std::string(table_.run_id(r))});
    last = r;
  }
  return page;
}

std::set<std::string> RunCatalog::gate_ids() const {
  std::shared_lock l(mu_);
  std::vector<bool> used(table_.gate_count());
  for (uint32_t r : order_) {
    const RunTable::GateResult* g = table_.gate_results(r);
    for (uint8_t k = 0; k < table_.row(r).ngates; ++k) used[g[k].gate] = true;
  }
  std::set<std::string> out;
  for (uint32_t c = 0; c < used.size(); ++c)
    if (used[c]) out.insert(table_.gate_name(c));
  return out;
}

size_t RunCatalog::size() const {
  std::shared_lock l(mu_);
  return order_.size();
}

std::map<std::string, long long> RunCatalog::count_by_status() const {
  std::shared_lock l(mu_);
  std::map<std::pair<uint32_t, uint32_t>, long long> by_code;
  for (uint32_t r : order_) ++by_code[{table_.row(r).status, table_.row(r).code[RunTable::verdict]}];
  std::map<std::string, long long> out;
  for (const auto& [codes, n] : by_code) {
    std::string_view st = table_.str(codes.first), v = table_.str(codes.second);
    out[std::string(st == "sealed" && !v.empty() ? v : st)] += n;
  }
  return out;
}

std::map<std::string, std::map<std::string, long long>> RunCatalog::gate_outcomes() const {
  std::shared_lock l(mu_);
  std::map<std::pair<uint32_t, uint32_t>, long long> by_code;
  for (uint32_t r : order_) {
    const RunTable::GateResult* g = table_.gate_results(r);
    for (uint8_t k = 0; k < table_.row(r).ngates; ++k) ++by_code[{g[k].gate, g[k].verdict}];
  }
  std::map<std::string, std::map<std::string, long long>> out;
  for (const auto& [codes, n] : by_code)
    out[table_.gate_name(codes.first)][std::string(table_.str(codes.second))] += n;
  return out;
}

}  // namespace cp::serve
