// A run's evidence: its reports and artifacts (redacted unless an admin asks for raw=1), and the decision
// on its evidence (promote as a commit onto a branch, or reject).
#include "control/actor.hpp"
#include "control/evidence.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"
#include "store/atomic_file.hpp"

#include <fstream>
#include <regex>
#include <sstream>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxArtifactBytes = 64u << 20;

std::string read_file(const fs::path& p, bool& ok) {
  std::ifstream in(p, std::ios::binary);
  ok = static_cast<bool>(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string content_type_for(const fs::path& p) {
  std::string ext = p.extension().string();
  if (ext == ".json") return "application/json";
  if (ext == ".jsonl") return "application/x-ndjson";
  if (ext == ".patch" || ext == ".diff" || ext == ".log" || ext == ".txt" || ext == ".md")
    return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

ApiResponse report(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  bool raw = false;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) return *no;
  std::string name = c.param("name");
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) name.resize(name.size() - 5);
  static const std::regex ok_name("^[a-z0-9][a-z0-9_-]{0,63}$");
  if (!std::regex_match(name, ok_name))
    return error(400, "bad_name",
                 "report names are lower-case letters, digits, '_' and '-' (e.g. gate_diff_scope)");
  std::string why;
  auto p = safe_subpath(run->dir / "reports", name + ".json", why);
  if (!p) return error(404, "not_found", "run " + run->id + " has no report " + name + " (" + why + ")");
  bool ok = false;
  std::string body = read_file(*p, ok);
  if (!ok) return error(404, "not_found", "run " + run->id + " has no report " + name);
  return evidence(std::move(body), "application/json", raw, "report " + name);
}

ApiResponse artifact(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  bool raw = false;
  if (auto no = raw_wanted(c.query("raw"), c.who, raw)) return *no;
  const std::string rel = c.param("path");
  std::string why;
  auto p = safe_subpath(run->dir / "artifacts", rel, why);
  if (!p) {
    int code = why == "not found" || why == "no such folder" ? 404 : 400;
    return error(code, code == 404 ? "not_found" : "bad_path",
                 "artifact '" + rel + "' of run " + run->id + ": " + why);
  }
  // Never blocks: a FIFO a run left in its scratch folder must not hold this thread (and the API) forever.
  // And opened beneath artifacts/ component by component, never following a link: a run that swaps one of
  // its folders for a link after the check above reaches nothing outside its bundle.
  store::FileRead f = store::read_regular_file_beneath(
      run->dir / "artifacts", p->lexically_relative(run->dir / "artifacts"), kMaxArtifactBytes);
  if (f.status == store::FileRead::Status::not_regular)
    return error(404, "not_found", "artifact '" + rel + "' is not a file");
  if (f.status == store::FileRead::Status::too_large)
    return error(413, "too_large",
                 "artifact is larger than 64 MiB; read it from the bundle on disk: " + p->string());
  return evidence(std::move(f.bytes), content_type_for(*p), raw, "artifact '" + rel + "'");
}

ApiResponse promote(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  auto b = object_body(c.req.body);
  if (!b) return error(400, "bad_body", "the body must be a JSON object such as {\"branch\": \"...\"}");
  auto actor = control::token_holder(c.who.token_id, "human", string_field(*b, "reason"));
  std::string branch = string_field(*b, "branch");
  if (branch.empty())
    return error(422, "invalid", "/branch: name the branch to promote onto, e.g. {\"branch\": \"cp/fix\"}");
  auto r = evidence_response(control::promote(s.cfg.root, run->id, branch, actor));
  s.runs.update(run->id);  // the re-seal added events: the cross-run views must see the run's new last event
  return r;
}

ApiResponse reject_evidence_route(const ApiServices& s, const RouteCall& c) {
  ApiResponse refused;
  auto run = run_of(s, c, refused);
  if (!run) return refused;
  auto b = object_body(c.req.body);
  if (!b) return error(400, "bad_body", "the body must be a JSON object such as {\"branch\": \"...\"}");
  auto actor = control::token_holder(c.who.token_id, "human", string_field(*b, "reason"));
  auto r = evidence_response(control::reject_evidence(s.cfg.root, run->id, actor));
  s.runs.update(run->id);
  return r;
}

}  // namespace

std::vector<Route> evidence_routes() {
  return {
      {{"GET", "/api/runs/{id}/reports/{name}", Role::viewer}, report},
      {{"GET", "/api/runs/{id}/artifacts/{path}", Role::viewer}, artifact},
      {{"POST", "/api/runs/{id}/evidence/promote", Role::operator_}, promote},
      {{"POST", "/api/runs/{id}/evidence/reject", Role::operator_}, reject_evidence_route},
  };
}

}  // namespace cp::serve
