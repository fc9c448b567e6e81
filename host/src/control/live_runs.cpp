#include "control/live_runs.hpp"

#include "core/json_depth.hpp"
#include "core/runtime_paths.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A manifest is a few KiB; a larger one (a run cannot write its bundle, but a disk can be damaged) is
// shown without its fields.
constexpr uint64_t kMaxManifestBytes = 1u << 20;
// A path longer than this in a FILE_CHANGED event is counted, not kept.
constexpr size_t kMaxPathBytes = 1024;

json read_manifest(const fs::path& dir) {
  store::FileRead r = store::read_regular_file(dir / "manifest.json", kMaxManifestBytes);
  if (r.status != store::FileRead::Status::ok || !core::json_depth_ok(r.bytes)) return nullptr;
  json m = json::parse(r.bytes, nullptr, false);
  return m.is_object() ? m : json();
}

std::string str(const json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
}

}  // namespace

std::string LiveRuns::stage_after(const std::string& type, const std::string& current) {
  if (type == "RUN_STARTED" || type == "PROBE_COMPLETED") return "probe";
  if (type == "WORKSPACE_CREATED" || type == "SANDBOX_APPLIED") return "workspace";
  if (type == "RUNNER_STARTED") return "runner";
  if (type == "RUNNER_FINISHED") return "collect";
  if (type == "DIFF_COLLECTED" || type.rfind("GATE_", 0) == 0) return "gates";
  if (type == "RUN_SEALED" || type == "RUN_AWAITING_APPROVAL") return "sealing";
  // What a runner reports while it works (commands, file changes, agent messages, browser steps, a
  // plugin's own types) keeps the run where it is.
  return current;
}

void LiveRuns::take(const std::string& line, Progress& p) {
  if (line.empty() || !core::json_depth_ok(line)) return;
  json e = json::parse(line, nullptr, false);
  if (!e.is_object()) return;
  std::string type = str(e, "type");
  if (type.empty()) return;
  p.last_type = type;
  p.last_ts = str(e, "ts");
  if (e.contains("seq") && e["seq"].is_number_integer()) p.last_seq = e["seq"].get<long long>();
  p.stage = stage_after(type, p.stage);
  if (type != "FILE_CHANGED") return;
  ++p.file_events;
  const json& payload = e.contains("payload") ? e["payload"] : json();
  if (!payload.is_object() || !payload.contains("changes") || !payload["changes"].is_array()) return;
  for (const auto& ch : payload["changes"]) {
    std::string path = str(ch, "path");
    if (path.empty() || p.paths.count(path)) continue;
    if (path.size() > kMaxPathBytes || p.paths.size() >= limits_.paths_kept) {
      p.paths_truncated = true;
      continue;
    }
    p.paths.insert(std::move(path));
  }
}

void LiveRuns::read_events(const fs::path& file, Progress& p, uint64_t& budget) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return;
  }
  // Another file, or one cut shorter (recovery truncates a torn last line): read it again from the start.
  if (static_cast<uint64_t>(st.st_ino) != p.inode || static_cast<uint64_t>(st.st_size) < p.offset) {
    Progress fresh;
    fresh.inode = static_cast<uint64_t>(st.st_ino);
    p = std::move(fresh);
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t want = std::min({size - p.offset, limits_.bytes_per_run, budget});
  std::string buf(static_cast<size_t>(want), '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(p.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  buf.resize(got);
  budget -= got;
  size_t pos = 0;
  if (p.skipping) {
    size_t nl = buf.find('\n');
    if (nl == std::string::npos) {
      p.offset += got;
      p.caught_up = p.offset >= size;
      return;
    }
    pos = nl + 1;
    p.skipping = false;
  }
  // Whole lines only: a line still being written is read next time.
  while (pos < buf.size()) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string::npos) break;
    take(buf.substr(pos, nl - pos), p);
    pos = nl + 1;
  }
  // A line longer than a whole read is skipped to its end rather than read forever.
  if (pos == 0 && got == limits_.bytes_per_run) {
    pos = got;
    p.skipping = true;
  }
  p.offset += pos;
  p.caught_up = p.offset >= size;
}

json LiveRuns::snapshot() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::string> ids;
  std::error_code ec;
  for (fs::directory_iterator it(core::live_dir(root_), ec), end; !ec && it != end; it.increment(ec)) {
    std::string id = it->path().filename().string();
    if (store::valid_run_id(id)) ids.push_back(id);
  }
  // What is no longer live is forgotten.
  for (auto it = runs_.begin(); it != runs_.end();)
    it = std::find(ids.begin(), ids.end(), it->first) == ids.end() ? runs_.erase(it) : std::next(it);

  uint64_t budget = limits_.bytes_per_snapshot;
  json runs = json::array();
  for (const auto& id : ids) {
    fs::path dir = core::bundle_dir(root_, id);
    if (!fs::is_directory(fs::symlink_status(dir, ec))) continue;  // still being made under .incoming/
    json m = read_manifest(dir);
    Progress& p = runs_[id];
    read_events(dir / "events.jsonl", p, budget);
    json assigned =
        m.is_object() && m.contains("role_binding_summary") && m["role_binding_summary"].is_object()
            ? m["role_binding_summary"].value("assigned", json::object())
            : json::object();
    json files = json::array();
    for (const auto& path : p.paths) {
      if (files.size() >= limits_.paths_listed) break;
      files.push_back(path);
    }
    json run{{"run_id", id},
             {"task_id", str(m, "task_id")},
             {"status", m.is_object() ? str(m, "status") : std::string("unreadable")},
             {"role", str(assigned, "role")},
             {"agent_id", str(assigned, "agent_id")},
             {"runner", str(m, "runner")},
             {"stage", p.stage},
             {"worktree", str(m, "worktree")},
             {"created_at", str(m, "created_at")},
             {"files_changed",
              {{"count", p.paths.size()},
               {"more", p.paths_truncated},
               {"paths", files},
               {"events", p.file_events}}},
             {"events_read", {{"last_seq", p.last_seq}, {"caught_up", p.caught_up}}}};
    if (!str(m, "started_at").empty()) run["started_at"] = str(m, "started_at");
    if (!p.last_type.empty())
      run["last_event"] = {{"seq", p.last_seq}, {"type", p.last_type}, {"ts", p.last_ts}};
    if (assigned.contains("prompt_sha256")) run["role_prompt_sha256"] = assigned["prompt_sha256"];
    if (m.is_object() && m.contains("queue") && m["queue"].is_object())
      run["queue_item_id"] = str(m["queue"], "item_id");
    runs.push_back(run);
  }
  std::stable_sort(runs.begin(), runs.end(), [](const json& a, const json& b) {
    return a["created_at"].get<std::string>() != b["created_at"].get<std::string>()
               ? a["created_at"].get<std::string>() < b["created_at"].get<std::string>()
               : a["run_id"].get<std::string>() < b["run_id"].get<std::string>();
  });
  return {{"runs", runs}, {"count", runs.size()}};
}

}  // namespace cp::control
