#include "serve/run_catalog.hpp"
#include "core/runtime_paths.hpp"

#include "store/bundle.hpp"

#include "core/clock.hpp"
#include "serve/event_feed.hpp"

#include <sys/stat.h>

#include <algorithm>
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

RunSpan span_of(const store::RunSummary& e) {
  RunSpan s;
  s.run_id = e.run_id;
  s.dir = e.dir;
  s.workflow_id = e.fields.value("workflow_id", "");
  s.first_ms = e.created_at.empty() ? 0 : std::max<long long>(0, core::parse_iso_ms(e.created_at));
  s.live = !is_final(e.status) && e.status != "awaiting_approval";
  long long last = last_event_ms(e.dir / "events.jsonl");
  s.last_ms = s.live ? std::numeric_limits<long long>::max() : std::max(last, s.first_ms);
  return s;
}

}  // namespace

RunCatalog::RunCatalog(fs::path root) : root_(std::move(root)), runs_(core::runs_dir(root_)) {}

std::optional<RunCatalog::Entry> RunCatalog::read_entry(const std::string& run_id) const {
  return store::read_run_summary(runs_ / run_id, run_id);
}

void RunCatalog::put(Entry e) {
  Key k{e.created_at, e.run_id};
  auto found = by_id_.find(e.run_id);
  // A run re-read with the same key keeps its node (and so its row's pointer); one whose key moved is
  // taken out and put back.
  bool in_place = found != by_id_.end() && found->second.created_at == k.created_at;
  if (found != by_id_.end() && !in_place) {
    if (auto node = by_time_.find(found->second); node != by_time_.end()) {
      if (!bulk_) rows_.remove(node->second);
      by_time_.erase(node);
    }
    by_id_.erase(found);
  }
  RunSpan span = span_of(e);
  if (auto old = spans_.find(e.run_id); old != spans_.end())
    by_last_event_.erase({old->second.last_ms, e.run_id});
  by_last_event_.insert({span.last_ms, e.run_id});
  spans_[e.run_id] = std::move(span);
  stats_.update(e);
  if (is_final(e.status))
    open_.erase(e.run_id);
  else
    open_.insert(e.run_id);
  by_id_[e.run_id] = k;
  Entry& slot = by_time_[k];
  if (!in_place || slot.fields != e.fields) ++generation_;
  slot = std::move(e);
  if (bulk_) return;
  if (in_place)
    rows_.update(slot);
  else
    rows_.insert(slot);
}

void RunCatalog::erase(const std::string& run_id) {
  auto found = by_id_.find(run_id);
  if (found == by_id_.end()) return;
  if (auto node = by_time_.find(found->second); node != by_time_.end()) {
    if (!bulk_) rows_.remove(node->second);
    by_time_.erase(node);
  }
  by_id_.erase(found);
  open_.erase(run_id);
  ++generation_;
  if (auto old = spans_.find(run_id); old != spans_.end()) {
    by_last_event_.erase({old->second.last_ms, run_id});
    spans_.erase(old);
  }
  stats_.remove(run_id);
}

std::vector<RunSpan> RunCatalog::spans_by_last_event(
    const std::optional<std::pair<long long, std::string>>& after, size_t n) const {
  std::shared_lock l(mu_);
  auto it = after ? by_last_event_.upper_bound(*after) : by_last_event_.begin();
  std::vector<RunSpan> out;
  for (; it != by_last_event_.end() && out.size() < n; ++it) out.push_back(spans_.at(it->second));
  return out;
}

std::optional<RunSpan> RunCatalog::span(const std::string& run_id) const {
  std::shared_lock l(mu_);
  auto it = spans_.find(run_id);
  if (it == spans_.end()) return std::nullopt;
  return it->second;
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

void RunCatalog::refresh() {
  // The folder is listed again when it changed: its mtime, and its ctime and inode too, which no one can
  // set back (a `touch -d` that restores the mtime after a run was taken away still moves the ctime).
  struct stat st {};
  bool ok = ::stat(runs_.c_str(), &st) == 0;
  const std::string mtime = ok ? std::to_string(st.st_mtim.tv_sec) + '.' +
                                     std::to_string(st.st_mtim.tv_nsec) + '/' +
                                     std::to_string(st.st_ctim.tv_sec) + '.' +
                                     std::to_string(st.st_ctim.tv_nsec) + '/' + std::to_string(st.st_ino)
                               : std::string();
  std::error_code ec;
  std::vector<std::string> unsealed;
  bool relist = false;
  {
    std::shared_lock l(mu_);
    relist = ok && mtime != runs_mtime_;
    unsealed.assign(open_.begin(), open_.end());
  }
  // Reading happens outside the lock; only the swaps are under it.
  std::vector<Entry> fresh;
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
      if (name.empty() || name[0] == '.') continue;
      names.push_back(std::move(name));
    }
    std::unordered_map<std::string, bool> on_disk;
    for (const auto& n : names) on_disk[n] = true;
    {
      std::shared_lock l(mu_);
      for (const auto& [id, key] : by_id_)
        if (!on_disk.count(id)) gone.push_back(id);
      std::vector<std::string> added;
      for (const auto& n : names)
        if (!by_id_.count(n)) added.push_back(n);
      names.swap(added);
    }
    for (const auto& n : names)
      if (auto e = read_entry(n)) fresh.push_back(std::move(*e));
  }
  std::unique_lock l(mu_);
  // Many runs come or go at once (the first build, a restored root): one rebuild of the rows, not a shift
  // per run. Runs re-read in place (the live ones, every refresh) do not count.
  size_t moved = gone.size();
  for (const auto& e : fresh) moved += by_id_.count(e.run_id) ? 0 : 1;
  bulk_ = moved > 256;
  for (auto& e : fresh) put(std::move(e));
  for (const auto& id : gone) erase(id);
  if (bulk_) {
    std::vector<const Entry*> newest_first;
    newest_first.reserve(by_time_.size());
    for (const auto& [k, e] : by_time_) newest_first.push_back(&e);
    rows_.rebuild(newest_first);
    bulk_ = false;
  }
  if (relist) runs_mtime_ = mtime;
}

std::optional<RunPage> RunCatalog::list(const RunFilter& f, size_t limit, const std::string& cursor) const {
  std::shared_lock l(mu_);
  const auto& rows = rows_.rows();
  size_t i = rows.size();  // newest first: the walk goes down from here
  if (!cursor.empty()) {
    auto k = decode_cursor(cursor);
    if (!k) return std::nullopt;
    i = rows_.older_than(k->first, k->second);
  }
  RunPage page;
  auto screen = rows_.screen(f);
  if (!screen) return page;  // a value no run has
  // Newest first: nothing created before `since` can match, so the walk ends there.
  const size_t stop = f.since.empty() ? 0 : rows_.created_before(f.since);
  const Entry* last = nullptr;
  bool more = false;
  while (i > stop) {
    const RunRows::Row& r = rows[--i];
    if (!RunRows::passes(r, *screen) || !store::matches(*r.run, f)) continue;
    if (page.runs.size() == limit) {
      more = true;  // another run matches: there is a next page
      break;
    }
    page.runs.push_back(r.run->fields);
    last = r.run;
  }
  if (more && last) page.next_cursor = encode_cursor(last->created_at, last->run_id);
  return page;
}

std::optional<GateResultPage> RunCatalog::gate_results(const std::string& gate_id, const std::string& verdict,
                                                       size_t limit, const std::string& cursor) const {
  std::shared_lock l(mu_);
  auto it = by_time_.begin();
  if (!cursor.empty()) {
    auto k = decode_cursor(cursor);
    if (!k) return std::nullopt;
    it = by_time_.upper_bound(Key{k->first, k->second});
  }
  GateResultPage page;
  for (; it != by_time_.end(); ++it) {
    const Entry& e = it->second;
    auto g = std::find_if(e.gates.begin(), e.gates.end(), [&](const auto& x) { return x.first == gate_id; });
    if (g == e.gates.end() || (!verdict.empty() && g->second != verdict)) continue;
    if (page.results.size() == limit) {
      // Another run matches: there is a next page, which starts after the last one given.
      const Key& last = by_id_.at(page.results.back().run.value("run_id", ""));
      page.next_cursor = encode_cursor(last.created_at, last.run_id);
      break;
    }
    page.results.push_back({e.fields, g->second, e.dir});
  }
  return page;
}

std::set<std::string> RunCatalog::gate_ids() const {
  std::shared_lock l(mu_);
  std::set<std::string> out;
  for (const auto& [k, e] : by_time_)
    for (const auto& [gate, verdict] : e.gates) out.insert(gate);
  return out;
}

size_t RunCatalog::size() const {
  std::shared_lock l(mu_);
  return by_id_.size();
}

std::map<std::string, long long> RunCatalog::count_by_status() const {
  std::shared_lock l(mu_);
  std::map<std::string, long long> out;
  for (const auto& [k, e] : by_time_)
    ++out[e.status == "sealed" && !e.verdict.empty() ? e.verdict : e.status];
  return out;
}

std::map<std::string, std::map<std::string, long long>> RunCatalog::gate_outcomes() const {
  std::shared_lock l(mu_);
  std::map<std::string, std::map<std::string, long long>> out;
  for (const auto& [k, e] : by_time_)
    for (const auto& [gate, verdict] : e.gates) ++out[gate][verdict];
  return out;
}

}  // namespace cp::serve
