#include "intake/session_view.hpp"

#include "chain/chain_queue.hpp"
#include "core/json_depth.hpp"
#include "core/runtime_paths.hpp"
#include "intake/intake_service.hpp"
#include "intake/intake_store.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <deque>
#include <set>

namespace cp::intake {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxReportBytes = 4u << 20;
constexpr uint64_t kMaxEventsBytes = 64u << 20;

std::optional<json> run_file(const fs::path& root, const std::string& run_id, const std::string& rel) {
  if (!store::valid_run_id(run_id)) return std::nullopt;
  auto r = store::read_regular_file_beneath(core::runs_dir(root), fs::path(run_id) / rel, kMaxReportBytes);
  if (r.status != store::FileRead::Status::ok || !core::json_depth_ok(r.bytes)) return std::nullopt;
  json doc = json::parse(r.bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  return doc;
}

// The last `keep` events of a run (oldest first) and how many it has.
std::pair<json, size_t> last_events(const fs::path& root, const std::string& run_id, size_t keep) {
  auto r = store::read_regular_file_beneath(core::runs_dir(root), fs::path(run_id) / "events.jsonl",
                                            kMaxEventsBytes);
  if (r.status != store::FileRead::Status::ok) return {json::array(), 0};
  std::deque<json> tail;
  size_t total = 0, start = 0;
  while (start < r.bytes.size()) {
    size_t end = r.bytes.find('\n', start);
    if (end == std::string::npos) break;  // a torn last line is not an event
    json ev = json::parse(r.bytes.substr(start, end - start), nullptr, false);
    start = end + 1;
    if (ev.is_discarded() || !ev.is_object()) continue;
    ++total;
    tail.push_back(std::move(ev));
    if (tail.size() > keep) tail.pop_front();
  }
  return {json(std::vector<json>(tail.begin(), tail.end())), total};
}

// Every run id a chain view names, with the step it belongs to, in step order.
std::vector<std::pair<std::string, std::string>> chain_runs(const json& view) {
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  auto add = [&](const json& id, const std::string& step) {
    if (id.is_string() && seen.insert(id.get<std::string>()).second)
      out.emplace_back(id.get<std::string>(), step);
  };
  for (const auto& st : view.value("steps", json::array())) {
    const std::string step = st.value("step_id", "");
    if (st.contains("run_id")) add(st["run_id"], step);
    for (const auto& r : st.value("runs", json::array()))
      add(r.is_object() ? r.value("run_id", json()) : r, step);
  }
  return out;
}

void add_metrics(json& total, const json& m) {
  for (const char* k : {"duration_ms", "input_tokens", "output_tokens", "turns"})
    if (m.contains(k)) total[k] = total.value(k, 0LL) + m[k].get<long long>();
  if (m.contains("cost_usd")) total["cost_usd"] = total.value("cost_usd", 0.0) + m["cost_usd"].get<double>();
  total["gate_failures"] = total.value("gate_failures", 0) + static_cast<int>(m["gate_failures"].size());
}

std::optional<json> chain_of(const fs::path& root, const json& session) {
  if (!session["chain_id"].is_string()) return std::nullopt;
  return chain::queued_chain_view(root, session["chain_id"].get<std::string>());
}

}  // namespace

json run_metrics(const fs::path& root, const std::string& run_id) {
  json m{{"gate_failures", json::array()}};
  if (auto sum = store::read_run_summary(core::runs_dir(root) / run_id, run_id)) {
    if (sum->duration_ms >= 0) m["duration_ms"] = sum->duration_ms;
    for (const auto& [gate, verdict] : sum->gates)
      if (verdict == "fail" || verdict == "error") m["gate_failures"].push_back(gate);
  }
  if (auto tr = run_file(root, run_id, "reports/task_result.json")) {
    const json& u = (*tr)["usage"];
    if (u.is_object())
      for (const char* k : {"input_tokens", "output_tokens", "turns"})
        if (u.contains(k) && u[k].is_number_integer() && u[k].get<long long>() >= 0) m[k] = u[k];
    if (u.is_object() && u.contains("cost_usd") && u["cost_usd"].is_number() &&
        u["cost_usd"].get<double>() >= 0)
      m["cost_usd"] = u["cost_usd"];
  }
  return m;
}

json session_summaries(const fs::path& root) {
  IntakeService svc(root, {}, nullptr);
  json out = json::array();
  // The list is held by name: a range-for over a temporary's member would read a destroyed object.
  const json listed = svc.list();
  for (const auto& brief : listed["intakes"]) {
    json item = brief;
    item["chain_state"] = nullptr;
    item["chain_verdict"] = nullptr;
    item["steps"] = 0;
    json totals = json::object();
    size_t runs = 0;
    IntakeStore store(root);
    if (auto s = store.load(brief["intake_id"])) {
      if (auto view = chain_of(root, *s)) {
        item["chain_state"] = view->value("state", json());
        item["chain_verdict"] = view->value("verdict", json());
        item["steps"] = view->value("steps", json::array()).size();
        for (const auto& [id, step] : chain_runs(*view)) {
          add_metrics(totals, run_metrics(root, id));
          ++runs;
        }
      }
    }
    item["runs"] = runs;
    item["metrics"] = totals;
    out.push_back(std::move(item));
  }
  return {{"sessions", out}, {"count", out.size()}};
}

std::optional<json> session_detail(const fs::path& root, const std::string& intake_id,
                                   size_t events_per_run) {
  IntakeService svc(root, {}, nullptr);
  auto shown = svc.show(intake_id);
  if (!shown) return std::nullopt;
  json out{{"intake", *shown}, {"chain", nullptr}, {"runs", json::array()}, {"metrics", json::object()}};
  if (auto view = chain_of(root, *shown)) {
    out["chain"] = *view;
    for (const auto& [id, step] : chain_runs(*view)) {
      json run{{"run_id", id}, {"step_id", step}};
      if (auto sum = store::read_run_summary(core::runs_dir(root) / id, id)) {
        run["status"] = sum->status;
        run["verdict"] = sum->verdict.empty() ? json(nullptr) : json(sum->verdict);
        run["task_id"] = sum->task_id;
      }
      run["metrics"] = run_metrics(root, id);
      add_metrics(out["metrics"], run["metrics"]);
      auto [events, total] = last_events(root, id, events_per_run);
      run["events"] = std::move(events);
      run["events_total"] = total;
      out["runs"].push_back(std::move(run));
    }
  }
  return out;
}

}  // namespace cp::intake
