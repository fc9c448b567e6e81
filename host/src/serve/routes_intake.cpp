// Intake previews: the execution plan a contract would get (role binding, gates, budgets), without a run.
#include "contract/validation.hpp"
#include "control/intake_preview.hpp"
#include "core/json_depth.hpp"
#include "core/runtime_paths.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

#include <unistd.h>

#include <cstdlib>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

ApiResponse preview(const ApiServices& s, const RouteCall& c) {
  const std::string& text = c.req.body;
  if (text.empty() || !core::json_depth_ok(text))
    return error(400, "bad_body", "the body must be a JSON object: {\"contract\": {...}}");
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return error(400, "bad_body", "the body is not a JSON object");
  json contract = body.contains("contract") ? body["contract"] : body;
  // The preview reads a file, like a run: a private temp file outside the runs folder, removed after.
  fs::path dir = core::intake_dir(s.cfg.root);
  fs::create_directories(dir);
  std::string tmpl = (dir / ".preview-XXXXXX").string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return error(500, "internal", "cannot make a temp file under " + dir.string());
  std::string dumped = contract.dump();
  bool wrote = ::write(fd, dumped.data(), dumped.size()) == static_cast<ssize_t>(dumped.size());
  ::close(fd);
  struct Remove {
    std::string p;
    ~Remove() { ::unlink(p.c_str()); }
  } remove{tmpl};
  if (!wrote) return error(500, "internal", "cannot write the contract to a temp file");
  auto r = control::intake_preview(tmpl, s.cfg.root, s.cfg.plugins_dir);
  if (!r.ok) {
    std::string prefix = body.contains("contract") ? "/contract" : "";
    return invalid_contract(r.error, r.diagnostics, prefix, tmpl);
  }
  return ok_json(r.report);
}

}  // namespace

std::vector<Route> intake_routes() {
  return {
      {{"POST", "/api/intake/preview", Role::operator_}, preview},
  };
}

}  // namespace cp::serve
