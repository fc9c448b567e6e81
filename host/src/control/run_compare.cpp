#include "control/run_compare.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"

#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/event_log.hpp"
#include "store/run_index.hpp"

#include <fstream>
#include <map>
#include <set>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Side {
  fs::path dir;
  json manifest;
  std::set<std::string> files;
  json diff;  // {files, insertions, deletions, patch_bytes, patch_sha256}
  std::map<std::string, long long> event_types;
};

Side read_side(const fs::path& dir) {
  Side s;
  s.dir = dir;
  s.manifest = core::read_json_file(dir / "manifest.json");
  json changed = core::read_json_file(dir / "artifacts/changed_files.json");
  if (changed.is_array())
    for (const auto& c : changed) s.files.insert(c.value("path", ""));
  long long ins = 0, del = 0, bytes = 0;
  std::ifstream patch(dir / "artifacts/diff.patch", std::ios::binary);
  std::string line;
  while (std::getline(patch, line)) {
    bytes += static_cast<long long>(line.size()) + 1;
    if (line.rfind("+++", 0) == 0 || line.rfind("---", 0) == 0) continue;
    if (!line.empty() && line[0] == '+') ++ins;
    if (!line.empty() && line[0] == '-') ++del;
  }
  s.diff = {{"files", s.files.size()}, {"insertions", ins}, {"deletions", del}, {"patch_bytes", bytes}};
  std::ifstream ev(dir / "events.jsonl");
  while (std::getline(ev, line)) {
    json e = json::parse(line, nullptr, false);
    if (e.is_object()) ++s.event_types[e.value("type", "?")];
    if (e.is_object() && e.value("type", "") == "DIFF_COLLECTED")
      s.diff["patch_sha256"] = e["payload"].value("patch_sha256", "");
  }
  return s;
}

json summary(const Side& s) {
  const json& m = s.manifest;
  json j{{"run_id", m.value("run_id", "")},
         {"task_id", m.value("task_id", "")},
         {"status", m.value("status", "")},
         {"contract_sha256", m.value("contract_sha256", "")},
         {"runner", m.value("runner", "")}};
  for (const char* k : {"verdict", "reason", "baseline_commit", "duration_ms", "created_at", "replay_of"})
    if (m.contains(k)) j[k] = m[k];
  return j;
}

json gate_map(const json& manifest) {
  json g = json::object();
  for (const auto& x : manifest.value("gates", json::array()))
    g[x.value("gate_id", "?")] = x.value("verdict", "");
  return g;
}

}  // namespace

CompareResult compare_runs(const fs::path& root, const std::string& run_a, const std::string& run_b,
                           bool write) {
  CompareResult r;
  auto da = store::find_run(root, run_a);
  auto db = store::find_run(root, run_b);
  if (!da || !db) {
    r.missing = !da ? 1 : 2;
    r.message = "no run " + (!da ? run_a : run_b);
    return r;
  }
  for (const auto& d : {*da, *db})
    if (std::string why = store::refusal_to_act(d); !why.empty()) {
      r.unverified = true;
      r.message = why;
      return r;
    }
  try {
    Side a = read_side(*da), b = read_side(*db);
    if (!a.manifest.is_object() || !b.manifest.is_object()) {
      r.message = "a manifest cannot be read";
      return r;
    }
    json gates = json::array();
    json ga = gate_map(a.manifest), gb = gate_map(b.manifest);
    std::set<std::string> ids;
    for (const auto& [k, v] : ga.items()) ids.insert(k);
    for (const auto& [k, v] : gb.items()) ids.insert(k);
    for (const auto& id : ids) {
      json e{{"gate_id", id}, {"a", ga.value(id, "absent")}, {"b", gb.value(id, "absent")}};
      e["same"] = e["a"] == e["b"];
      gates.push_back(e);
    }
    json only_a = json::array(), only_b = json::array(), both = json::array();
    for (const auto& f : a.files) (b.files.count(f) ? both : only_a).push_back(f);
    for (const auto& f : b.files)
      if (!a.files.count(f)) only_b.push_back(f);
    json events = json::array();
    std::set<std::string> types;
    for (const auto& [t, n] : a.event_types) types.insert(t);
    for (const auto& [t, n] : b.event_types) types.insert(t);
    for (const auto& t : types) {
      long long na = a.event_types.count(t) ? a.event_types[t] : 0;
      long long nb = b.event_types.count(t) ? b.event_types[t] : 0;
      events.push_back({{"type", t}, {"a", na}, {"b", nb}});
    }
    std::string va = a.manifest.value("verdict", a.manifest.value("status", ""));
    std::string vb = b.manifest.value("verdict", b.manifest.value("status", ""));
    bool same_patch = a.diff.value("patch_sha256", "") == b.diff.value("patch_sha256", "") &&
                      !a.diff.value("patch_sha256", "").empty();
    r.report = {
        {"schema_version", 1},
        {"kind", "run_compare_report"},
        {"generated_at", core::now_utc_iso()},
        {"a", summary(a)},
        {"b", summary(b)},
        {"replay", b.manifest.value("replay_of", "") == run_a},
        {"same_contract", a.manifest.value("contract_sha256", "") == b.manifest.value("contract_sha256", "")},
        {"verdict", {{"a", va}, {"b", vb}, {"same", va == vb}}},
        {"gates", gates},
        {"changed_files",
         {{"a", a.files.size()},
          {"b", b.files.size()},
          {"only_a", only_a},
          {"only_b", only_b},
          {"both", both}}},
        {"diff_stats", {{"a", a.diff}, {"b", b.diff}, {"same_patch", same_patch}}},
        {"usage",
         {{"a", a.manifest.value("usage", json::object())},
          {"b", b.manifest.value("usage", json::object())}}},
        {"event_types", events}};
    if (write) {
      // A report added to a sealed bundle re-seals it: the REPORT_ADDED event binds the new file.
      auto bundle = store::Bundle::open(root, run_b);
      bundle->write_json("reports/run_compare_report.json", r.report);
      json reports = bundle->manifest().value("reports", json::object());
      reports["run_compare"] = "reports/run_compare_report.json";
      bundle->seal(
          "REPORT_ADDED",
          {{"report", "reports/run_compare_report.json"}, {"kind", "run_compare_report"}, {"against", run_a}},
          {{"reports", reports}});
    }
    r.ok = true;
  } catch (const std::exception& e) {
    r.message = e.what();
  }
  return r;
}

}  // namespace cp::control
