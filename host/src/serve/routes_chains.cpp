// Chains: the chain executions under the root, newest first (GET /api/chains: the chains queued and not yet
// sealed on the first page, then the catalogue's chain bundles, paged like GET /api/runs), one of them step
// by step (GET /api/chains/{id}: a queued chain from the queue, chain/chain_queue.hpp; a sealed one from
// its bundle, chain/chain_view.hpp, with what the queue adds), a chain queued for serve to run (POST
// /api/chains) and a queued chain cancelled (POST /api/chains/{id}/cancel).
#include "chain/chain_queue.hpp"
#include "chain/chain_view.hpp"
#include "control/actor.hpp"
#include "core/json_depth.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"
#include "serve/scheduler.hpp"
#include "store/run_index.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string lowered(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Whether a queued chain's row passes the list's filters (status, verdict, workflow, q).
bool queued_row_matches(const json& row, const RunFilter& f) {
  if (!f.verdict.empty()) return false;  // a chain not sealed has no verdict yet
  if (!f.status.empty() && row.value("status", "") != f.status && row.value("state", "") != f.status)
    return false;
  if (!f.workflow.empty() && (!row["workflow_id"].is_string() || row["workflow_id"] != f.workflow))
    return false;
  if (!f.text.empty()) {
    std::string hay = lowered(row.value("run_id", "") + " " + row.value("chain_id", "") + " " +
                              (row["title"].is_string() ? row["title"].get<std::string>() : std::string()) +
                              " " + row.value("origin", ""));
    if (hay.find(lowered(f.text)) == std::string::npos) return false;
  }
  return true;
}

ApiResponse list_chains(const ApiServices& s, const RouteCall& c) {
  RunFilter f;
  f.kind = "chain";
  f.status = c.query("status");
  f.verdict = c.query("verdict");
  f.workflow = c.query("workflow");
  f.text = c.query("q");
  ApiResponse refused;
  auto page = run_page(s, c, f, refused);
  if (!page) return refused;
  json chains = json::array();
  // The chains still in the queue come first, on the first page: they are the newest and the ones moving.
  if (c.query("cursor").empty())
    for (auto& row : chain::list_queued_chains(s.cfg.root))
      if (queued_row_matches(row, f)) chains.push_back(std::move(row));
  for (auto& row : page->runs) {
    row["chain_id"] = row.value("task_id", "");
    chains.push_back(std::move(row));
  }
  json out{{"chains", chains}, {"count", chains.size()}};
  out["next_cursor"] = page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor);
  return ok_view(std::move(out));
}

ApiResponse one_chain(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto id = run_id_of(c, refused);
  if (!id) return refused;
  if (auto queued = chain::queued_chain_view(s.cfg.root, *id)) return ok_view(std::move(*queued));
  auto v = chain::chain_view(s.cfg.root, *id);
  using O = chain::ChainView::Outcome;
  switch (v.outcome) {
    case O::ok:
      return ok_view(std::move(v.view));
    case O::not_found:
      return error(404, "not_found", v.message + "; see GET /api/chains");
    case O::not_a_chain:
      return error(404, "not_a_chain", v.message + "; GET /api/runs/" + *id + " shows it");
    case O::unreadable:
      break;
  }
  return error(500, "unreadable", v.message);
}

// The diagnostics of a refused chain, as POST /api/runs gives a refused contract's: pointers into the
// body for what is in it, the file (relative to the project) for a contract file it names.
ApiResponse invalid_chain(const ApiServices& s, const chain::QueuedChainResult& r) {
  json diags = json::array();
  for (const auto& d : r.diagnostics) {
    const bool body = d.file == "request body";
    std::string file = d.file;
    if (!body) {
      auto rel = fs::path(d.file).lexically_relative(s.cfg.root);
      if (!rel.empty() && *rel.begin() != "..") file = rel.string();
    }
    json one = contract::diagnostic_json(d);
    one["file"] = file;
    diags.push_back(std::move(one));
  }
  return error(422, "invalid_chain", r.error + " (see details); nothing was queued", diags);
}

ApiResponse submit_chain(const ApiServices& s, const RouteCall& c) {
  const std::string& text = c.req.body;
  const char* shape =
      "{\"chain\": {...a task chain...}, \"repo\": \"...\", \"origin\": \"...\", \"priority\": 5}";
  if (text.empty()) return error(400, "bad_body", std::string("the body must be a JSON object: ") + shape);
  if (!core::json_depth_ok(text))
    return error(400, "bad_body",
                 "the body nests deeper than " + std::to_string(core::kMaxJsonDepth) + " levels");
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return error(400, "bad_body", std::string("the body is not a JSON object: ") + shape);
  for (const auto& [k, v] : body.items())
    if (k != "chain" && k != "repo" && k != "origin" && k != "priority")
      return error(422, "invalid", "/" + k + ": unknown field; the body is " + shape, {{"pointer", "/" + k}});
  if (!body.contains("chain") || !body["chain"].is_object())
    return error(422, "invalid", "/chain must be a task chain object (schemas/task_chain.schema.json)",
                 {{"pointer", "/chain"}});
  chain::QueuedChainRequest req;
  req.chain = body["chain"];
  if (body.contains("origin")) {
    if (!body["origin"].is_string() || body["origin"].get<std::string>().size() > 500)
      return error(422, "invalid", "/origin must be a string of at most 500 characters",
                   {{"pointer", "/origin"}});
    req.origin = body["origin"];
  }
  if (body.contains("priority")) {
    const json& p = body["priority"];
    if (!p.is_number_integer() || p.get<long long>() < 0 || p.get<long long>() > 9)
      return error(422, "invalid", "/priority must be an integer from 0 to 9 (higher runs first)",
                   {{"pointer", "/priority"}});
    req.priority = p.get<int>();
  }
  if (auto refused_repo = read_repo(s.cfg, body, req.repo)) return *refused_repo;
  // Contract files the chain names are the project's: relative to the root, never outside it.
  req.base_dir = s.cfg.root;
  req.confine_paths = true;
  req.source = "request body";
  req.source_text = text;
  req.pointer_prefix = "/chain";
  req.root = s.cfg.root;
  req.plugins_dir = s.cfg.plugins_dir;
  req.registry = s.registry;
  req.submitted_by = c.caller();
  auto r = chain::submit_queued_chain(req);
  using O = chain::QueuedChainResult::Outcome;
  if (r.outcome == O::invalid) {
    if (r.diagnostics.empty()) return error(422, "invalid", r.error + "; nothing was queued");
    return invalid_chain(s, r);
  }
  if (r.outcome == O::conflict) return error(409, "conflict", r.error + "; nothing was queued");
  if (s.scheduler) s.scheduler->poke();
  ApiResponse out = ok_view(r.view);
  out.status = 202;
  out.headers.emplace_back("Location", "/api/chains/" + r.chain_id);
  return out;
}

ApiResponse cancel_chain(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto id = run_id_of(c, refused);
  if (!id) return refused;
  auto body = object_body(c.req.body);
  if (!body)
    return error(400, "bad_body", "the body, when given, must be a JSON object: {\"reason\": \"...\"}");
  std::string reason;
  for (const auto& [k, v] : body->items()) {
    if (k != "reason")
      return error(422, "invalid", "/" + k + ": unknown field; the body is {\"reason\": \"...\"} (optional)",
                   {{"pointer", "/" + k}});
    if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 1000)
      return error(422, "invalid", "/reason must be a string of 1 to 1000 characters",
                   {{"pointer", "/reason"}});
    reason = v.get<std::string>();
  }
  auto r =
      chain::cancel_queued_chain(s.cfg.root, *id, control::token_holder(c.caller(), "human", reason), reason);
  using O = chain::CancelChainResult::Outcome;
  if (r.outcome == O::not_found) {
    if (store::find_run(s.cfg.root, *id))
      return error(
          409, "not_queued",
          *id + " was not queued (a `cp-host chain run` chain, or a run): there is nothing to cancel here");
    return error(404, "not_found", r.message + "; see GET /api/chains");
  }
  if (r.outcome == O::already_ended) return error(409, "already_ended", r.message);
  if (s.scheduler) s.scheduler->poke();
  return ok_view({{"run_id", *id},
                  {"outcome", "cancelled"},
                  {"message", r.message},
                  {"cancelled", r.cancelled},
                  {"stopping", r.stopping},
                  {"rejected", r.rejected},
                  {"view", r.view}});
}

}  // namespace

std::vector<Route> chains_routes() {
  return {
      {{"GET", "/api/chains", Role::viewer}, list_chains},
      {{"POST", "/api/chains", Role::operator_}, submit_chain},
      {{"GET", "/api/chains/{id}", Role::viewer}, one_chain},
      {{"POST", "/api/chains/{id}/cancel", Role::operator_}, cancel_chain},
  };
}

}  // namespace cp::serve
