#include "store/run_index.hpp"
#include "core/json_file.hpp"

#include "store/bundle.hpp"

#include <algorithm>

namespace cp::store {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<RunSummary> list_runs(const fs::path& root) {
  std::vector<RunSummary> out;
  std::error_code ec;
  fs::path runs = runs_dir(root);
  if (!fs::is_directory(runs, ec)) return out;
  for (const auto& e : fs::directory_iterator(runs, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || !e.is_directory(ec)) continue;
    RunSummary s;
    s.dir = e.path();
    s.run_id = name;
    json m = core::read_json_file(e.path() / "manifest.json");
    if (!m.is_object()) {
      s.status = "unreadable";
    } else {
      s.task_id = m.value("task_id", "");
      s.status = m.value("status", "");
      s.verdict = m.value("verdict", "");
      s.runner = m.value("runner", "");
      s.created_at = m.value("created_at", "");
      s.reason = m.value("reason", "");
      s.duration_ms = m.value("duration_ms", -1LL);
    }
    out.push_back(std::move(s));
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
  json j{{"run_id", s.run_id}, {"task_id", s.task_id},       {"status", s.status},
         {"runner", s.runner}, {"created_at", s.created_at}, {"bundle", s.dir.string()}};
  if (!s.verdict.empty()) j["verdict"] = s.verdict;
  if (!s.reason.empty()) j["reason"] = s.reason;
  if (s.duration_ms >= 0) j["duration_ms"] = s.duration_ms;
  return j;
}

}  // namespace cp::store
