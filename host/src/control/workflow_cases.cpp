#include "control/workflow_cases.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "log/logger.hpp"
#include "store/after_seal.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/event_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <regex>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool safe_id(const std::string& id) {
  static const std::regex ok("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
  return std::regex_match(id, ok) && id.find("..") == std::string::npos;
}

json run_entry(const json& m) {
  json e{{"run_id", m.value("run_id", "")},
         {"task_id", m.value("task_id", "")},
         {"status", m.value("status", "")},
         {"created_at", m.value("created_at", "")}};
  for (const char* k : {"verdict", "reason", "finished_at", "runner", "pack", "replay_of"})
    if (m.contains(k)) e[k] = m[k];
  if (m.contains("chain")) e["chain"] = m["chain"];
  if (m.contains("role_binding_summary")) e["role_binding_summary"] = m["role_binding_summary"];
  return e;
}

// The snapshot from its runs: ordered by manifest created_at (then run id), newest last.
json make_case(const std::string& workflow_id, json runs) {
  std::sort(runs.begin(), runs.end(), [](const json& a, const json& b) {
    auto ka = std::make_pair(a.value("created_at", ""), a.value("run_id", ""));
    auto kb = std::make_pair(b.value("created_at", ""), b.value("run_id", ""));
    return ka < kb;
  });
  const json& latest = runs.back();
  json counts = json::object();
  for (const auto& r : runs) {
    std::string k = r.value("verdict", r.value("status", ""));
    counts[k] = counts.value(k, 0) + 1;
  }
  json read_model{
      {"workflow_id", workflow_id},
      {"latest_run_id", latest["run_id"]},
      {"task_id", latest["task_id"]},
      {"status", latest["status"]},
      {"role_binding_summary", latest.value("role_binding_summary", json::object())},
      {"source", "latest linked run's manifest.json (read-only mirror; the task contract rules)"}};
  if (latest.contains("verdict")) read_model["verdict"] = latest["verdict"];
  json c{{"schema_version", 1},
         {"kind", "workflow_case"},
         {"workflow_id", workflow_id},
         {"updated_at", core::now_utc_iso()},
         {"status", latest["status"]},
         {"latest_run_id", latest["run_id"]},
         {"latest_created_at", latest["created_at"]},
         {"run_count", runs.size()},
         {"outcomes", counts},
         {"runs", runs},
         {"workflow_case_read_model", read_model}};
  if (latest.contains("verdict")) c["verdict"] = latest["verdict"];
  // Entries keep their binding only in the read model: the list stays small.
  for (auto& r : c["runs"]) r.erase("role_binding_summary");
  return c;
}

class CaseLock {
 public:
  explicit CaseLock(const fs::path& dir) {
    fs::create_directories(dir);
    fd_ = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0)
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
  }
  ~CaseLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  CaseLock(const CaseLock&) = delete;
  CaseLock& operator=(const CaseLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

fs::path workflow_cases_dir(const fs::path& root) {
  return core::workflow_cases_dir(root);
}

void record_workflow_cases_on_seal() {
  store::add_seal_observer(record_in_workflow_case);
}

void record_in_workflow_case(const fs::path& root, const json& manifest) {
  if (!manifest.is_object() || !manifest.contains("workflow_id") || !manifest["workflow_id"].is_string())
    return;
  const std::string id = manifest["workflow_id"];
  if (!safe_id(id)) return;
  try {
    fs::path dir = workflow_cases_dir(root) / id;
    CaseLock lock(dir);
    json old = core::read_json_file(dir / "case.json");
    json runs = json::array();
    // Entries as they were once read back from their bundle, plus this run as it is now.
    if (old.is_object() && old.contains("runs") && old["runs"].is_array())
      for (const auto& r : old["runs"])
        if (r.value("run_id", "") != manifest.value("run_id", "")) runs.push_back(r);
    // The read model needs the newest run's binding, which entries do not keep: take it from its bundle.
    runs.push_back(run_entry(manifest));
    json c = make_case(id, runs);
    const std::string latest = c["latest_run_id"];
    if (latest != manifest.value("run_id", "")) {
      json lm = core::read_json_file(core::runs_dir(root) / latest / "manifest.json");
      if (lm.is_object())
        c["workflow_case_read_model"]["role_binding_summary"] =
            lm.value("role_binding_summary", json::object());
    }
    store::write_json_atomic(dir / "case.json", c);
  } catch (const std::exception& e) {
    log::warn("workflow case " + id + ": cannot write case.json: " + e.what());
  }
}

json rebuild_workflow_case(const fs::path& root, const std::string& workflow_id) {
  if (!safe_id(workflow_id)) return nullptr;
  json runs = json::array();
  json latest_binding;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(core::runs_dir(root), ec)) {
    if (!store::valid_run_id(e.path().filename().string())) continue;
    json m = core::read_json_file(e.path() / "manifest.json");
    if (m.is_object() && m.value("workflow_id", "") == workflow_id) runs.push_back(run_entry(m));
  }
  if (runs.empty()) return nullptr;
  fs::path dir = workflow_cases_dir(root) / workflow_id;
  CaseLock lock(dir);
  json c = make_case(workflow_id, runs);
  json lm =
      core::read_json_file(core::runs_dir(root) / c["latest_run_id"].get<std::string>() / "manifest.json");
  if (lm.is_object())
    c["workflow_case_read_model"]["role_binding_summary"] = lm.value("role_binding_summary", json::object());
  store::write_json_atomic(dir / "case.json", c);
  return c;
}

std::optional<json> read_workflow_case(const fs::path& root, const std::string& workflow_id) {
  if (!safe_id(workflow_id)) return std::nullopt;
  json c = core::read_json_file(workflow_cases_dir(root) / workflow_id / "case.json");
  if (!c.is_object()) return std::nullopt;
  return c;
}

json list_workflow_cases(const fs::path& root) {
  json out = json::array();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(workflow_cases_dir(root), ec)) {
    std::string id = e.path().filename().string();
    if (!safe_id(id)) continue;
    json c = core::read_json_file(e.path() / "case.json");
    if (!c.is_object()) continue;
    json s{{"workflow_id", id},
           {"status", c.value("status", "")},
           {"latest_run_id", c.value("latest_run_id", "")},
           {"latest_created_at", c.value("latest_created_at", "")},
           {"run_count", c.value("run_count", 0)},
           {"updated_at", c.value("updated_at", "")}};
    if (c.contains("verdict")) s["verdict"] = c["verdict"];
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::make_pair(a["latest_created_at"].get<std::string>(), a["workflow_id"].get<std::string>()) >
           std::make_pair(b["latest_created_at"].get<std::string>(), b["workflow_id"].get<std::string>());
  });
  return out;
}

}  // namespace cp::control
