#include "store/run_index.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/schema_catalog.hpp"

#include "store/bundle.hpp"

#include <sys/stat.h>

#include <algorithm>

namespace cp::store {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string text(const json& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::optional<RunSummary> read_run_summary(const fs::path& dir, const std::string& run_id) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  RunSummary s;
  s.run_id = run_id;
  s.dir = dir;
  s.fields = json{{"run_id", run_id}};
  json m = core::read_json_file(dir / "manifest.json");
  if (!m.is_object()) {
    s.status = "unreadable";
  } else {
    s.task_id = text(m, "task_id");
    s.status = text(m, "status");
    s.verdict = text(m, "verdict");
    s.runner = text(m, "runner");
    s.pack = text(m, "pack");
    s.created_at = text(m, "created_at");
    s.reason = text(m, "reason");
    s.title = text(m, "title");
    s.workflow_id = text(m, "workflow_id");
    s.kind = text(m, "kind") == "chain" ? "chain" : "run";
    if (auto d = m.find("duration_ms"); d != m.end() && d->is_number()) s.duration_ms = d->get<long long>();
    if (auto g = m.find("gates"); g != m.end() && g->is_array())
      for (const auto& gate : *g)
        if (gate.is_object()) s.gates.emplace_back(text(gate, "gate_id"), text(gate, "verdict"));
    s.finished_at = text(m, "finished_at");
    if (auto a = m.find("approval"); a != m.end() && a->is_object()) {
      s.approval_requested_at = text(*a, "requested_at");
      s.approval_deadline = text(*a, "deadline");
    }
    for (const char* k : {"task_id", "title", "kind", "runner", "pack", "created_at", "finished_at",
                          "sealed_at", "verdict", "reason", "duration_ms", "workflow_id", "queue", "chain"})
      if (m.contains(k)) s.fields[k] = m[k];
  }
  s.fields["status"] = s.status;
  // A live run's last event is when its log last grew: one stat, never a read of the log.
  if (s.status != "sealed" && s.status != "unreadable") {
    struct stat st {};
    if (::lstat((dir / "events.jsonl").c_str(), &st) == 0)
      s.events_mtime_ms = static_cast<long long>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  }
  return s;
}

namespace {

// ASCII lower case: a table-free fold, since <cctype>'s goes through the locale for every character.
char fold(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Whether `needle` (not empty) occurs in `hay`, ignoring ASCII case; nothing is copied, so a search over
// every run's fields allocates nothing.
bool contains_folded(const std::string& hay, const std::string& needle) {
  if (needle.size() > hay.size()) return false;
  const char first = fold(needle[0]);
  const size_t last = hay.size() - needle.size();
  for (size_t i = 0; i <= last; ++i) {
    if (fold(hay[i]) != first) continue;
    size_t k = 1;
    while (k < needle.size() && fold(hay[i + k]) == fold(needle[k])) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

}  // namespace

bool matches(const RunSummary& s, const RunQuery& q) {
  if (!q.status.empty() && s.status != q.status && s.verdict != q.status) return false;
  if (!q.verdict.empty() && s.verdict != q.verdict &&
      !(q.verdict == kAwaitingApproval && s.status == kAwaitingApproval))
    return false;
  if (!q.runner.empty() && s.runner != q.runner) return false;
  if (!q.pack.empty() && s.pack != q.pack) return false;
  if (!q.workflow.empty() && s.workflow_id != q.workflow) return false;
  if (!q.kind.empty() && s.kind != q.kind) return false;
  if (!q.since.empty() && s.created_at < q.since) return false;
  if (!q.text.empty() && !contains_folded(s.run_id, q.text) && !contains_folded(s.task_id, q.text) &&
      !contains_folded(s.title, q.text))
    return false;
  return true;
}

const std::vector<std::string>& run_verdicts() {
  static const std::vector<std::string> verdicts = [] {
    std::vector<std::string> out;
    json schema = json::parse(core::schema_text("run_manifest"), nullptr, false);
    const json* e = nullptr;
    if (schema.is_object()) {
      auto ptr = json::json_pointer("/properties/verdict/enum");
      if (schema.contains(ptr)) e = &schema[ptr];
    }
    if (e && e->is_array())
      for (const auto& v : *e) out.push_back(v.get<std::string>());
    return out;
  }();
  return verdicts;
}

std::string query_problem(const RunQuery& q, std::string& param) {
  if (!q.verdict.empty()) {
    const auto& all = run_verdicts();
    if (q.verdict != kAwaitingApproval && std::find(all.begin(), all.end(), q.verdict) == all.end()) {
      std::string names;
      for (const auto& v : all) names += v + ", ";
      names += kAwaitingApproval;
      param = "verdict";
      return "verdict '" + q.verdict + "' is none of: " + names;
    }
  }
  if (!q.kind.empty() && q.kind != "run" && q.kind != "chain") {
    param = "kind";
    return "kind '" + q.kind + "' is neither run nor chain";
  }
  if (!q.since.empty() && core::parse_iso_ms(q.since) < 0) {
    param = "since";
    return "since must be an ISO-8601 UTC time such as 2026-11-25T10:00:00Z";
  }
  if (q.text.size() > kMaxQueryText) {
    param = "q";
    return "the search text is longer than " + std::to_string(kMaxQueryText) + " characters";
  }
  return "";
}

std::vector<RunSummary> list_runs(const fs::path& root) {
  std::vector<RunSummary> out;
  std::error_code ec;
  fs::path runs = runs_dir(root);
  if (!fs::is_directory(runs, ec)) return out;
  for (const auto& e : fs::directory_iterator(runs, ec)) {
    std::string name = e.path().filename().string();
    // Only a name the host could have given a run is one: any other (a dot file, bytes that are not
    // UTF-8) is not a run, and would not survive being written into a JSON answer.
    if (!valid_run_id(name)) continue;
    if (auto s = read_run_summary(e.path(), name)) out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](const RunSummary& a, const RunSummary& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.run_id > b.run_id;
  });
  return out;
}

std::optional<fs::path> find_run(const fs::path& root, const std::string& run_id) {
  if (!valid_run_id(run_id)) return std::nullopt;
  fs::path dir = runs_dir(root) / run_id;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  return dir;
}

json to_json(const RunSummary& s) {
  // The listing fields as GET /api/runs gives them (so `runs list --json` answers the same locally and
  // through --server), then the bundle's local folder, which only a local listing knows.
  if (s.fields.is_object() && !s.fields.empty()) {
    json j = s.fields;
    j["bundle"] = s.dir.string();
    return j;
  }
  json j{{"run_id", s.run_id}, {"task_id", s.task_id},       {"status", s.status},
         {"runner", s.runner}, {"created_at", s.created_at}, {"bundle", s.dir.string()}};
  if (!s.verdict.empty()) j["verdict"] = s.verdict;
  if (!s.reason.empty()) j["reason"] = s.reason;
  if (!s.title.empty()) j["title"] = s.title;
  if (!s.workflow_id.empty()) j["workflow_id"] = s.workflow_id;
  if (s.kind == "chain") j["kind"] = s.kind;
  if (s.duration_ms >= 0) j["duration_ms"] = s.duration_ms;
  return j;
}

}  // namespace cp::store
