// Task packs: the kinds of job the planners know (packs/tasks/<name>/pack.json under the root), with their
// fields and the questions asked for them (GET /api/task-packs), and one pack whole (GET
// /api/task-packs/{name}). A pack that fails its checks is not listed among the packs but in `invalid`, with
// what `cp-host validate` would say of it.
#include "contract/task_packs.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

#include <nlohmann/json.hpp>

namespace cp::serve {

using nlohmann::json;

namespace {

ApiResponse list_task_packs(const ApiServices& s, const RouteCall&) {
  auto set = contract::load_task_packs(s.cfg.root);
  json packs = json::array();
  for (const auto& p : set.packs) packs.push_back(contract::task_pack_summary(p, s.cfg.root));
  return ok_json({{"task_packs", packs},
                  {"count", packs.size()},
                  {"invalid", contract::diagnostics_json(set.diagnostics)},
                  {"truncated", set.truncated}});
}

ApiResponse one_task_pack(const ApiServices& s, const RouteCall& c) {
  const std::string name = c.param("name");
  std::vector<contract::Diagnostic> why;
  auto pack = contract::load_task_pack(s.cfg.root, name, why);
  if (pack) {
    json out = contract::task_pack_summary(*pack, s.cfg.root);
    out["pack"] = pack->doc;
    return ok_json(out);
  }
  bool bad_name = !why.empty() && why.front().rule == "name";
  if (bad_name)
    return error(400, "bad_name",
                 "'" + name.substr(0, 100) +
                     "' is not a task pack name: [a-z][a-z0-9-]{0,63}; see GET /api/task-packs",
                 {{"where", "/name"}});
  bool missing = why.empty() || (why.size() == 1 && why.front().rule == "io");
  if (missing)
    return error(
        404, "not_found",
        "no task pack '" + name + "' under " + contract::kTaskPacksDir + "/ (see GET /api/task-packs)",
        {{"where", std::string(contract::kTaskPacksDir) + "/" + name + "/" + contract::kTaskPackFile}});
  return error(422, "invalid_task_pack",
               "task pack '" + name + "' is invalid: " + contract::describe(why.front()) +
                   "; fix the file and check it with `cp-host validate " + why.front().file + "`",
               {{"diagnostics", contract::diagnostics_json(why)}});
}

}  // namespace

std::vector<Route> task_packs_routes() {
  return {
      {{"GET", "/api/task-packs", Role::viewer}, list_task_packs},
      {{"GET", "/api/task-packs/{name}", Role::viewer}, one_task_pack},
  };
}

}  // namespace cp::serve
