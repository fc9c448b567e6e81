// Intake: the sessions that turn a PM's request into a queued task chain (questions, answers, the plan,
// run), and the preview of the execution plan a finished contract would get, without a run.
#include "contract/validation.hpp"
#include "control/intake_preview.hpp"
#include "core/json_depth.hpp"
#include "core/runtime_paths.hpp"
#include "intake/intake_service.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/scheduler.hpp"

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

intake::IntakeService intake_service(const ApiServices& s) {
  return intake::IntakeService(s.cfg.root, s.cfg.plugins_dir, s.registry);
}

ApiResponse intake_answer(const intake::IntakeResult& r, int ok_status) {
  using O = intake::IntakeResult::Outcome;
  switch (r.outcome) {
    case O::ok: {
      ApiResponse a = ok_view(r.session);
      a.status = ok_status;
      return a;
    }
    case O::invalid: {
      json details{{"pointer", r.pointer}};
      if (!r.diagnostics.empty()) {
        json d = json::array();
        for (const auto& x : r.diagnostics)
          d.push_back({{"file", x.file}, {"pointer", x.pointer}, {"line", x.line}, {"message", x.message}});
        details["diagnostics"] = d;
      }
      return error(422, r.code, r.message, details);
    }
    case O::unavailable:
      return error(422, r.code, r.message, {{"pointer", r.pointer}});
    case O::not_found:
      return error(404, r.code, r.message);
    case O::conflict:
      return error(409, r.code, r.message,
                   r.session.is_object() ? json{{"state", r.session["state"]}} : json(nullptr));
    case O::failed:
      break;
  }
  return error(500, r.code.empty() ? "internal" : r.code, r.message);
}

std::optional<json> intake_body(const RouteCall& c, ApiResponse& refusal) {
  const std::string& text = c.req.body;
  if (text.empty() || !core::json_depth_ok(text)) {
    refusal = error(400, "bad_body", "the body must be a JSON object");
    return std::nullopt;
  }
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    refusal = error(400, "bad_body", "the body is not a JSON object");
    return std::nullopt;
  }
  return body;
}

ApiResponse create_intake(const ApiServices& s, const RouteCall& c) {
  ApiResponse refusal;
  auto body = intake_body(c, refusal);
  if (!body) return refusal;
  for (const char* k : {"request", "task_pack", "planner"})
    if (body->contains(k) && !(*body)[k].is_string())
      return error(422, "invalid", std::string("/") + k + " must be a string",
                   {{"pointer", std::string("/") + k}});
  for (const auto& [k, v] : body->items())
    if (k != "request" && k != "repo" && k != "task_pack" && k != "planner")
      return error(422, "invalid",
                   "/" + k + ": unknown field; the body takes request, repo, task_pack, planner",
                   {{"pointer", "/" + k}});
  fs::path repo;
  if (auto refused = read_repo(s.cfg, *body, repo)) return *refused;
  intake::NewIntake req{body->value("request", ""), repo.string(), body->value("task_pack", ""),
                        body->value("planner", ""), c.caller()};
  auto r = intake_service(s).create(req);
  ApiResponse a = intake_answer(r, 201);
  if (r.outcome == intake::IntakeResult::Outcome::ok)
    a.headers.emplace_back("Location", "/api/intake/" + r.session.value("intake_id", ""));
  return a;
}

ApiResponse answer_intake(const ApiServices& s, const RouteCall& c) {
  ApiResponse refusal;
  auto body = intake_body(c, refusal);
  if (!body) return refusal;
  if (!body->contains("answers"))
    return error(422, "invalid", "the body must hold answers: {\"answers\": {\"<question id>\": \"...\"}}",
                 {{"pointer", "/answers"}});
  return intake_answer(intake_service(s).answer(c.param("id"), (*body)["answers"], c.caller()), 200);
}

ApiResponse run_intake(const ApiServices& s, const RouteCall& c) {
  auto r = intake_service(s).run(c.param("id"), c.caller());
  if (r.outcome == intake::IntakeResult::Outcome::ok && s.scheduler) s.scheduler->poke();
  return intake_answer(r, 202);
}

ApiResponse show_intake(const ApiServices& s, const RouteCall& c) {
  auto shown = intake_service(s).show(c.param("id"));
  if (!shown) return error(404, "not_found", "no intake session '" + c.param("id") + "'");
  return ok_view(*shown);
}

ApiResponse list_intakes(const ApiServices& s, const RouteCall&) {
  return ok_view(intake_service(s).list());
}

}  // namespace

std::vector<Route> intake_routes() {
  return {
      {{"POST", "/api/intake/preview", Role::operator_}, preview},
      {{"POST", "/api/intake", Role::operator_}, create_intake},
      {{"GET", "/api/intakes", Role::viewer}, list_intakes},
      {{"GET", "/api/intake/{id}", Role::viewer}, show_intake},
      {{"POST", "/api/intake/{id}/answers", Role::operator_}, answer_intake},
      {{"POST", "/api/intake/{id}/run", Role::operator_}, run_intake},
  };
}

}  // namespace cp::serve
