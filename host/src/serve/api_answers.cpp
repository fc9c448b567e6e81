#include "serve/api_answers.hpp"

#include "contract/validation.hpp"
#include "control/approvals.hpp"
#include "control/evidence.hpp"
#include "core/json_depth.hpp"
#include "serve/secret_redaction.hpp"

#include <cstring>
#include <limits>

namespace cp::serve {

using nlohmann::json;

ApiResponse error(int status, const std::string& code, const std::string& message, json details) {
  ApiResponse r;
  r.status = status;
  json e{{"code", code}, {"message", message}};
  if (!details.is_null()) e["details"] = std::move(details);
  // Messages quote the request (its path, say), which need not be UTF-8: replaced, never thrown on.
  r.body = json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

ApiResponse ok_json(const json& j, int status) {
  ApiResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

ApiResponse ok_view(json j) {
  RedactionCounts c = redact_json_strings(j);
  ApiResponse r = ok_json(j);
  r.headers.emplace_back("X-CP-Redacted", std::to_string(c.total()));
  if (c.total() > 0) r.headers.emplace_back("X-CP-Redacted-Kinds", c.summary());
  return r;
}

std::optional<ApiResponse> raw_wanted(const std::string& value, const Principal& who, bool& raw) {
  raw = false;
  if (value.empty() || value == "0" || value == "false") return std::nullopt;
  if (value != "1" && value != "true") {
    return error(400, "bad_query", "raw must be 1 or 0, not '" + value + "'", json{{"parameter", "raw"}});
  }
  const std::string why =
      "raw=1 serves the file with its secrets as the run wrote it and needs an admin token; without raw=1 "
      "the same content is served with secrets redacted";
  if (who.role == Role::none) {
    ApiResponse r = error(401, "unauthorized", why);
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cp-host\"");
    return r;
  }
  if (who.role != Role::admin)
    return error(403, "raw_needs_admin",
                 "token '" + who.token_id + "' has role " + role_name(who.role) + "; " + why);
  raw = true;
  return std::nullopt;
}

// A run's file as the caller may read it. An admin's raw=1 gets the bytes on disk, marked X-CP-Raw and kept
// out of caches. Everyone else gets them with secrets redacted (X-CP-Redacted: how many). A binary file
// (one holding a NUL byte) is scanned too and served as it is when clean; when it holds a secret it is
// refused, since replacing bytes inside it would hand out a corrupt file that looks whole.
ApiResponse evidence(std::string body, std::string content_type, bool raw, const std::string& what) {
  ApiResponse r;
  r.content_type = std::move(content_type);
  if (raw) {
    r.headers.emplace_back("X-CP-Raw", "1");
    r.headers.emplace_back("Cache-Control", "no-store");
    r.raw = true;
    r.body = std::move(body);
    return r;
  }
  bool binary = std::memchr(body.data(), '\0', body.size()) != nullptr;
  RedactionCounts c = redact_secrets(body);
  if (binary && c.total() > 0)
    return error(403, "binary_with_secrets",
                 what + " is a binary file holding " + std::to_string(c.total()) +
                     " secret(s); it cannot be redacted without corrupting it. An admin can read it with "
                     "?raw=1",
                 json{{"redacted", c.summary()}});
  r.headers.emplace_back("X-CP-Redacted", std::to_string(c.total()));
  if (c.total() > 0) r.headers.emplace_back("X-CP-Redacted-Kinds", c.summary());
  r.body = std::move(body);
  return r;
}

std::optional<unsigned long long> strict_uint(const std::string& v, unsigned long long lo,
                                              unsigned long long hi) {
  if (v.empty() || v.size() > 20 || v.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  unsigned long long n = 0;
  for (char c : v) {
    unsigned d = static_cast<unsigned>(c - '0');
    if (n > (std::numeric_limits<unsigned long long>::max() - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  if (n < lo || n > hi) return std::nullopt;
  return n;
}

ApiResponse bad_number(const std::string& name, const std::string& value, const std::string& range) {
  return error(400, "bad_query", name + " must be " + range + ", not '" + value + "'",
               json{{"parameter", name}});
}

std::optional<json> object_body(const std::string& body) {
  if (body.empty()) return json::object();
  if (!core::json_depth_ok(body)) return std::nullopt;
  json b = json::parse(body, nullptr, false);
  if (b.is_discarded() || !b.is_object()) return std::nullopt;
  return b;
}

std::string string_field(const json& b, const char* k) {
  return b.contains(k) && b[k].is_string() ? b[k].get<std::string>() : std::string();
}

ApiResponse invalid_contract(const std::string& message, const std::vector<contract::Diagnostic>& diagnostics,
                             const std::string& prefix, const std::string& body_file) {
  json diags = json::array();
  for (const auto& d : diagnostics) {
    // Only the submitted contract's pointers are inside the body; a diagnostic of another file (the
    // contract's pack) keeps its own pointer and says which file it is.
    bool body = d.file == body_file;
    json one = contract::diagnostic_json(d);
    one["pointer"] = (body ? prefix : std::string()) + d.pointer;
    one["file"] = body ? std::string("request body") : d.file;
    diags.push_back(std::move(one));
  }
  return error(422, "invalid_contract", message, diags);
}

ApiResponse decision_response(const control::DecisionResult& r) {
  using O = control::DecisionResult::Outcome;
  int status = 200;
  std::string code;
  switch (r.outcome) {
    case O::recorded:
    case O::approved:
    case O::rejected:
      break;
    case O::expired:
    case O::not_awaiting:
    case O::duplicate:
    case O::unverified:
    case O::elsewhere:
      status = 409;
      code = control::outcome_name(r.outcome);
      break;
    case O::not_found:
      status = 404;
      code = "not_found";
      break;
    case O::invalid:
      status = 422;
      code = "invalid";
      break;
    case O::from_run:
      // This server runs inside a run's process tree: no token may decide through it.
      status = 403;
      code = "from_run";
      break;
    case O::error:
      status = 500;
      code = "internal";
      break;
  }
  if (status != 200) return error(status, code, r.message);
  json out{{"outcome", control::outcome_name(r.outcome)}, {"message", r.message}};
  if (r.manifest.is_object()) {
    out["run_id"] = r.manifest.value("run_id", "");
    out["status"] = r.manifest.value("status", "");
    if (r.manifest.contains("verdict")) out["verdict"] = r.manifest["verdict"];
    if (r.manifest.contains("approval")) out["approval"] = r.manifest["approval"];
  }
  return ok_json(out);
}

ApiResponse evidence_response(const control::EvidenceResult& r) {
  using O = control::EvidenceResult::Outcome;
  switch (r.outcome) {
    case O::promoted:
    case O::rejected:
      return ok_json({{"outcome", r.outcome == O::promoted ? "promoted" : "rejected"},
                      {"message", r.message},
                      {"evidence", r.evidence}});
    case O::refused:
      return error(409, "refused", r.message);
    case O::unverified:
      return error(409, "unverified", r.message);
    case O::not_found:
      return error(404, "not_found", r.message);
    case O::from_run:
      return error(403, "from_run", r.message);
    case O::error:
      break;
  }
  return error(500, "internal", r.message);
}

std::optional<ApiResponse> read_repo(const ApiConfig& cfg, const nlohmann::json& body,
                                     std::filesystem::path& repo) {
  repo = cfg.default_repo;
  if (body.contains("repo")) {
    if (!body["repo"].is_string()) return error(422, "invalid", "/repo must be a string path");
    std::error_code ec;
    repo = std::filesystem::weakly_canonical(std::filesystem::path(body["repo"].get<std::string>()), ec);
    bool allowed = false;
    for (const auto& a : cfg.allowed_repos) {
      auto rel = repo.lexically_relative(a);
      if (!rel.empty() && *rel.begin() != "..") allowed = true;
    }
    if (!allowed)
      return error(422, "repo_not_allowed",
                   "/repo: " + repo.string() +
                       " is not a repository this server may run on; start serve with "
                       "--allow-repo " +
                       repo.string() + " (or a folder above it)");
  }
  if (repo.empty())
    return error(422, "invalid", "/repo: this server has no default repository; name one in the body");
  return std::nullopt;
}

}  // namespace cp::serve
