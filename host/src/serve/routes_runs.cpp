// Runs: the list (from the catalogue), a submission (into the queue), one run's detail, a cancel, and the
// comparison of two runs.
#include "control/run_compare.hpp"
#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "queue/queue_service.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"
#include "serve/scheduler.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <algorithm>
#include <functional>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<RunPage> run_page(const ApiServices& s, const RouteCall& c, const RunFilter& f,
                                ApiResponse& refused) {
  constexpr size_t kDefaultPage = 50, kMaxPage = 1000;
  std::string param;
  if (auto problem = store::query_problem(f, param); !problem.empty()) {
    refused = error(400, "bad_query", problem, {{"parameter", param}});
    return std::nullopt;
  }
  size_t limit = kDefaultPage;
  if (!c.query("limit").empty()) {
    auto l = strict_uint(c.query("limit"), 1, kMaxPage);
    if (!l) {
      refused = bad_number("limit", c.query("limit"), "an integer from 1 to " + std::to_string(kMaxPage));
      return std::nullopt;
    }
    limit = static_cast<size_t>(*l);
  }
  auto page = s.runs.list(f, limit, c.query("cursor"));
  if (!page) refused = error(400, "bad_cursor", "cursor is not one this server gave out");
  return page;
}

namespace {

using AnswerBuilder = std::function<std::pair<CachedAnswer, bool>()>;

// An answer through a cache: `get` looks it up and calls the builder it is given when it has none; what
// `build` answers other than 200 is returned as it is and never kept.
ApiResponse through_cache(const std::function<std::pair<ApiResponse, bool>()>& build,
                          const std::function<CachedAnswer(const AnswerBuilder&)>& get) {
  std::optional<ApiResponse> unkept;
  CachedAnswer a = get([&]() -> std::pair<CachedAnswer, bool> {
    auto [r, keep] = build();
    if (r.status != 200) {
      unkept = std::move(r);
      return {{}, false};
    }
    return {{std::move(r.body), std::move(r.headers)}, keep};
  });
  if (unkept) return *unkept;
  ApiResponse r;
  r.body = std::move(a.body);
  r.headers = std::move(a.headers);
  return r;
}

ApiResponse build_list(const ApiServices& s, const RouteCall& c) {
  RunFilter f;
  f.status = c.query("status");
  f.verdict = c.query("verdict");
  f.runner = c.query("runner");
  f.pack = c.query("pack");
  f.workflow = c.query("workflow");
  f.since = c.query("since");
  f.text = c.query("q");
  f.kind = c.query("kind");
  ApiResponse refused;
  auto page = run_page(s, c, f, refused);
  if (!page) return refused;
  json out{{"runs", page->runs}, {"count", page->runs.size()}};
  out["next_cursor"] = page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor);
  return ok_view(std::move(out));
}

// A page is kept, by its query, for as long as the catalogue does not change (serve/answer_memo.hpp).
ApiResponse list_runs(const ApiServices& s, const RouteCall& c) {
  // A sorted map, each part length-prefixed: one key per query, and no two queries share one.
  std::string key;
  for (const auto& [k, v] : c.req.query)
    key += std::to_string(k.size()) + ':' + k + std::to_string(v.size()) + ':' + v;
  // Read before the page is built: a change while it is built leaves the page under the older generation.
  const uint64_t generation = s.runs.generation();
  return through_cache([&] { return std::pair<ApiResponse, bool>(build_list(s, c), true); },
                       [&](const AnswerBuilder& build) { return s.listed.get(key, generation, build); });
}

// The queue options of a wrapped submission ({"contract": ..., "priority": ...}); the 422 when one is off.
std::optional<ApiResponse> read_options(const json& body, queue::SubmitRequest& sr) {
  try {
    if (body.contains("contract")) {
      if (body.contains("priority")) sr.priority = body["priority"].get<int>();
      if (body.contains("depends_on")) sr.depends_on = body["depends_on"].get<std::vector<std::string>>();
      sr.run_after = body.value("run_after", "");
      sr.deadline = body.value("deadline", "");
      sr.start_by = body.value("start_by", "");
    }
  } catch (const std::exception& e) {
    return error(422, "invalid", std::string("submission options: ") + e.what());
  }
  return std::nullopt;
}

ApiResponse submit(const ApiServices& s, const RouteCall& c) {
  const std::string& text = c.req.body;
  if (text.empty()) return error(400, "bad_body", "the body must be a JSON object: {\"contract\": {...}}");
  if (!core::json_depth_ok(text))
    return error(400, "bad_body",
                 "the body nests deeper than " + std::to_string(core::kMaxJsonDepth) + " levels");
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return error(400, "bad_body", "the body is not a JSON object");
  queue::SubmitRequest sr;
  sr.contract = body.contains("contract") ? body["contract"] : body;
  sr.source = "request body";
  sr.submitted_by = c.caller();
  if (auto refused = read_options(body, sr)) return *refused;
  if (auto refused = read_repo(s.cfg, body, sr.repo)) return *refused;
  // Prefixes diagnostics' pointers when the contract came wrapped.
  std::string prefix = body.contains("contract") ? "/contract" : "";
  auto res = s.queue.submit(sr);
  if (res.outcome == queue::SubmitResult::Outcome::invalid)
    return invalid_contract(res.error, res.diagnostics, prefix);
  if (res.outcome == queue::SubmitResult::Outcome::conflict) return error(409, "conflict", res.error);
  if (s.scheduler) s.scheduler->poke();
  ApiResponse r = ok_json(res.item, 202);
  r.headers.emplace_back("Location", "/api/queue/" + res.item.value("item_id", ""));
  return r;
}

// A run's detail as built from its bundle, and whether it is settled: a sealed run whose verification will
// not change unless the bundle does.
std::pair<ApiResponse, bool> build_detail(const ApiServices& s, const RunRef& run) {
  std::string text;
  json man = core::read_json_file(run.dir / "manifest.json", text);
  if (!man.is_object())
    return {error(500, "unreadable", "the manifest of run " + run.id + " cannot be read"), false};
  json reports = json::array();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run.dir / "reports", ec))
    if (e.path().extension() == ".json") reports.push_back(e.path().stem().string());
  std::sort(reports.begin(), reports.end());
  json out{{"run_id", run.id}, {"manifest", man}, {"reports", reports}};
  // Verify-on-read: what a viewer reads of a sealed run says whether the bundle is as sealed.
  // The result is the one for this very manifest text (serve/verify_cache.hpp), so what is shown and what
  // was verified are the same bytes.
  out["verification"] = s.verified.check(run.dir, text);
  bool settled = man.value("status", "") == "sealed" && out["verification"].value("state", "") != "live";
  return {ok_view(std::move(out)), settled};
}

ApiResponse detail(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  // A sealed run's detail is served as kept bytes until its bundle changes (serve/sealed_answers.hpp).
  return through_cache([&] { return build_detail(s, *run); },
                       [&](const AnswerBuilder& build) { return s.answered.get(run->id, run->dir, build); });
}

// The queue item behind `id`: the id of an item itself, or of a run the queue started. "" with the refusal
// set when there is none.
std::string queue_item_of(const ApiServices& s, const std::string& id, ApiResponse& refused) {
  if (s.queue.get(id)) return id;
  auto dir = store::find_run(s.cfg.root, id);
  if (!dir) {
    refused = error(404, "not_found", "no run or queue item " + id);
    return "";
  }
  std::string item_id;
  json man = core::read_json_file(*dir / "manifest.json");
  if (man.contains("queue")) item_id = man["queue"].value("item_id", "");
  if (item_id.empty())
    refused = error(
        409, "not_queued",
        "run " + id + " was not started by this server's queue; stop it where it runs (Ctrl-C, SIGTERM)");
  return item_id;
}

ApiResponse cancel(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto id = run_id_of(c, refused);
  if (!id) return refused;
  std::string item_id = queue_item_of(s, *id, refused);
  if (item_id.empty()) return refused;
  std::string why = "cancelled through the API";
  if (!c.req.body.empty()) {
    json b = json::parse(c.req.body, nullptr, false);
    if (b.is_object() && b.contains("reason") && b["reason"].is_string())
      why = b["reason"].get<std::string>();
  }
  auto out = s.queue.cancel(item_id, c.caller(), why);
  if (out == queue::CancelOutcome::already_ended)
    return error(409, "already_ended", "item " + item_id + " has already ended");
  if (out == queue::CancelOutcome::not_found) return error(404, "not_found", "no queue item " + item_id);
  if (s.scheduler) s.scheduler->poke();
  return ok_json({{"item_id", item_id},
                  {"outcome", out == queue::CancelOutcome::cancelled ? "cancelled" : "cancel_requested"}},
                 202);
}

ApiResponse compare(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  const std::string other = c.param("other");
  if (!store::valid_run_id(other)) return error(400, "bad_id", "'" + other + "' is not a run id");
  // A GET only reads: the report is computed and returned, never stored. Storing it would write into
  // B's sealed bundle on a viewer's behalf; `cp-host compare` is the way to keep one.
  auto r = control::compare_runs(s.cfg.root, run->id, other, false);
  if (!r.ok && r.unverified) return error(409, "unverified", r.message);
  if (!r.ok) return error(r.missing ? 404 : 500, r.missing ? "not_found" : "internal", r.message);
  return ok_view(std::move(r.report));
}

}  // namespace

std::vector<Route> runs_routes() {
  return {
      {{"GET", "/api/runs", Role::viewer}, list_runs},
      {{"POST", "/api/runs", Role::operator_}, submit},
      {{"GET", "/api/runs/{id}", Role::viewer}, detail},
      {{"POST", "/api/runs/{id}/cancel", Role::operator_}, cancel},
      {{"GET", "/api/runs/{id}/compare/{other}", Role::viewer}, compare},
  };
}

}  // namespace cp::serve
