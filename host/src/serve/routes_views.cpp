// Views across runs and over the root: the contracts with their validation state, the policies and packs,
// the kept worktrees, and one gate's results across runs.
#include "control/kept_worktrees.hpp"
#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "plugin/registry.hpp"
#include "serve/api_answers.hpp"
#include "serve/root_documents.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"
#include "store/atomic_file.hpp"

#include <regex>
#include <set>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kDefaultGatePage = 20, kMaxGatePage = 200;
// A gate report is a plugin's verdict plus the host's fields; one larger than this is not read for a list.
constexpr uint64_t kMaxGateReportBytes = 1u << 20;

ApiResponse contracts(const ApiServices& s, const RouteCall&) {
  return ok_view(s.documents.contracts(s.cfg.root, s.registry));
}

ApiResponse policies(const ApiServices& s, const RouteCall&) {
  return ok_view(s.documents.policies(s.cfg.root, s.registry));
}

ApiResponse worktrees(const ApiServices& s, const RouteCall&) {
  auto listing = control::list_kept_worktrees(s.cfg.root);
  const int64_t now = core::now_ms();
  json list = json::array();
  unsigned long long total = 0;
  bool complete = true;
  for (const auto& w : listing.worktrees) {
    list.push_back(control::to_json(w, now));
    total += w.size.bytes;
    complete = complete && w.size.complete;
  }
  return ok_view({{"worktrees", list},
                  {"count", list.size()},
                  {"total_bytes", total},
                  {"total_complete", complete},
                  {"truncated", listing.truncated}});
}

// What a list shows of one run's gate report: its summary and advice, read bounded (a run's bundle is
// the host's, but a report carries what a plugin said about what a run wrote).
json report_summary(const fs::path& bundle, const std::string& gate_id) {
  const std::string rel = "reports/gate_" + gate_id + ".json";
  json out{{"report", rel}};
  store::FileRead f = store::read_regular_file_beneath(bundle, rel, kMaxGateReportBytes);
  if (f.status == store::FileRead::Status::too_large) {
    out["report_error"] =
        "the report is larger than 1 MiB; read it with GET /api/runs/{id}/reports/gate_" + gate_id;
    return out;
  }
  json doc = f.status == store::FileRead::Status::ok && core::json_depth_ok(f.bytes)
                 ? json::parse(f.bytes, nullptr, false)
                 : json(json::value_t::discarded);
  if (!doc.is_object()) {
    out["report_error"] = f.status == store::FileRead::Status::ok
                              ? "the report is not a JSON object"
                              : "the run has no readable report of this gate";
    return out;
  }
  for (const char* k :
       {"summary", "next_action", "required", "effective_verdict", "started_at", "duration_ms"})
    if (doc.contains(k)) out[k] = doc[k];
  if (doc.contains("diagnostics") && doc["diagnostics"].is_array())
    out["diagnostics"] = doc["diagnostics"].size();
  return out;
}

// The gate ids a caller could have meant: those of loaded gate plugins and those some run reported.
std::set<std::string> known_gates(const ApiServices& s) {
  std::set<std::string> ids = s.runs.gate_ids();
  if (s.registry)
    for (const auto& p : s.registry->plugins())
      if (p.kind == plugin::Kind::gate) ids.insert(p.id);
  return ids;
}

ApiResponse gate_results(const ApiServices& s, const RouteCall& c) {
  const std::string gate = c.param("gate_id");
  static const std::regex ok_id("^[a-z][a-z0-9_.-]{0,63}$");
  if (!std::regex_match(gate, ok_id))
    return error(400, "bad_id",
                 "'" + gate +
                     "' is not a gate id: gate ids are plugin ids, [a-z][a-z0-9_.-] up to 64 "
                     "characters (e.g. diff_scope)",
                 {{"parameter", "gate_id"}});
  const std::string verdict = c.query("verdict");
  static const std::set<std::string> verdicts{"pass", "fail", "warn", "error", "skipped"};
  if (!verdict.empty() && !verdicts.count(verdict))
    return error(
        400, "bad_query",
        "verdict must be one of pass, fail, warn, error, skipped (the gate's verdict), not '" + verdict + "'",
        {{"parameter", "verdict"}});
  size_t limit = kDefaultGatePage;
  if (!c.query("limit").empty()) {
    auto l = strict_uint(c.query("limit"), 1, kMaxGatePage);
    if (!l)
      return bad_number("limit", c.query("limit"), "an integer from 1 to " + std::to_string(kMaxGatePage));
    limit = static_cast<size_t>(*l);
  }
  auto page = s.runs.gate_results(gate, verdict, limit, c.query("cursor"));
  if (!page)
    return error(400, "bad_cursor", "cursor is not one this server gave out; start again without it",
                 {{"parameter", "cursor"}});
  if (page->results.empty() && c.query("cursor").empty()) {
    auto known = known_gates(s);
    if (!known.count(gate)) {
      std::string list;
      for (const auto& g : known) list += (list.empty() ? "" : ", ") + g;
      return error(404, "unknown_gate",
                   "no gate '" + gate + "': no run reports it and no gate plugin of that id is loaded" +
                       (list.empty() ? std::string() : "; known gate ids: " + list),
                   {{"known", json(known)}});
    }
  }
  json results = json::array();
  for (const auto& r : page->results) {
    json item{{"run_id", r.run.value("run_id", "")},
              {"created_at", r.run.value("created_at", "")},
              {"verdict", r.verdict},
              {"task_id", r.run.value("task_id", "")},
              {"run_status", r.run.value("status", "")},
              {"run_verdict", r.run.contains("verdict") ? r.run["verdict"] : json(nullptr)}};
    item.update(report_summary(r.dir, gate));
    results.push_back(std::move(item));
  }
  json out{{"gate_id", gate}, {"results", results}, {"count", results.size()}};
  out["next_cursor"] = page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor);
  return ok_view(std::move(out));
}

}  // namespace

std::vector<Route> views_routes() {
  return {
      {{"GET", "/api/contracts", Role::viewer}, contracts},
      {{"GET", "/api/policies", Role::viewer}, policies},
      {{"GET", "/api/worktrees", Role::viewer}, worktrees},
      {{"GET", "/api/gates/{gate_id}/results", Role::viewer}, gate_results},
  };
}

}  // namespace cp::serve
