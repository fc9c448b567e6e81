// Chains: the chain executions under the root, newest first (GET /api/chains: the catalogue's chain bundles,
// paged like GET /api/runs), and one of them step by step (GET /api/chains/{run_id}: chain/chain_view.hpp,
// what `cp-host chain show` prints).
#include "chain/chain_view.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"

#include <nlohmann/json.hpp>

namespace cp::serve {

using nlohmann::json;

namespace {

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

}  // namespace

std::vector<Route> chains_routes() {
  return {
      {{"GET", "/api/chains", Role::viewer}, list_chains},
      {{"GET", "/api/chains/{id}", Role::viewer}, one_chain},
  };
}

}  // namespace cp::serve
