// One run's detail views: its compiled contract, every report with the derived packs, a listing of its
// artifacts, and its patch as data (files, hunks, counts) or as the patch itself. What a run wrote is
// untrusted: every answer is redacted like the other evidence views (an admin's raw=1 reads it as written),
// and the views read nothing through a symlink and nothing without a bound (control/run_views.hpp).
#include "control/patch_view.hpp"
#include "control/run_views.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/secret_redaction.hpp"

namespace cp::serve {

using control::ViewResult;
using nlohmann::json;

namespace {

// The refusal for a view that could not be made.
ApiResponse view_failed(const std::string& run_id, const ViewResult& v) {
  switch (v.status) {
    case ViewResult::Status::missing:
      return error(404, "not_found", "run " + run_id + ": " + v.message);
    case ViewResult::Status::too_large:
      return error(
          413, "too_large",
          "run " + run_id + ": " + v.message + "; read it from the bundle with the CLI (cp-host runs)");
    case ViewResult::Status::unreadable:
    case ViewResult::Status::ok:
      break;
  }
  return error(500, "unreadable", "run " + run_id + ": " + v.message);
}

// A view built from the run's files: redacted, or (an admin's raw=1) as written, kept out of caches.
ApiResponse answer(json view, bool raw) {
  if (!raw) return ok_view(std::move(view));
  ApiResponse r = ok_json(view);
  r.headers.emplace_back("X-CP-Raw", "1");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.raw = true;
  return r;
}

// The run and the caller's raw=1, checked; nullopt with the refusal.
std::optional<RunRef> open_view(const ApiServices& s, const RouteCall& c, bool& raw, ApiResponse& refused) {
  auto run = run_of(s, c, refused);
  if (!run) return std::nullopt;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) {
    refused = *no;
    return std::nullopt;
  }
  return run;
}

ApiResponse contract(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  bool raw = false;
  auto run = open_view(s, c, raw, refused);
  if (!run) return refused;
  ViewResult v = control::contract_view(run->dir);
  if (v.status != ViewResult::Status::ok) return view_failed(run->id, v);
  return answer(std::move(v.view), raw);
}

ApiResponse reports(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  bool raw = false;
  auto run = open_view(s, c, raw, refused);
  if (!run) return refused;
  ViewResult v = control::reports_view(run->dir);
  if (v.status != ViewResult::Status::ok) return view_failed(run->id, v);
  return answer(std::move(v.view), raw);
}

ApiResponse artifacts(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  ViewResult v = control::artifact_listing(run->dir);
  if (v.status != ViewResult::Status::ok) return view_failed(run->id, v);
  return ok_view(std::move(v.view));
}

ApiResponse diff(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  const std::string format = c.query("format").empty() ? "json" : c.query("format");
  if (format != "json" && format != "patch")
    return error(400, "bad_query", "format must be json or patch, not '" + format + "'",
                 json{{"parameter", "format"}});
  bool raw = false;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) return *no;
  std::string text;
  ViewResult v = control::read_patch(run->dir, text);
  if (v.status != ViewResult::Status::ok) return view_failed(run->id, v);
  if (format == "patch") return evidence(std::move(text), "text/x-diff; charset=utf-8", raw, "the patch");
  // The patch is redacted whole before it is parsed: a key block spans many lines, which redacting line by
  // line would not see (secret_redaction.hpp keeps a patch's line structure and hunk counts).
  RedactionCounts found;
  if (!raw) found = redact_secrets(text);
  json view = control::parse_patch(text);
  view["run_id"] = run->id;
  ApiResponse r = ok_json(view);
  if (raw) {
    r.headers.emplace_back("X-CP-Raw", "1");
    r.headers.emplace_back("Cache-Control", "no-store");
    r.raw = true;
    return r;
  }
  r.headers.emplace_back("X-CP-Redacted", std::to_string(found.total()));
  if (found.total() > 0) r.headers.emplace_back("X-CP-Redacted-Kinds", found.summary());
  return r;
}

}  // namespace

std::vector<Route> run_detail_routes() {
  return {
      {{"GET", "/api/runs/{id}/contract", Role::viewer}, contract},
      {{"GET", "/api/runs/{id}/reports", Role::viewer}, reports},
      {{"GET", "/api/runs/{id}/artifacts", Role::viewer}, artifacts},
      {{"GET", "/api/runs/{id}/diff", Role::viewer}, diff},
  };
}

}  // namespace cp::serve
