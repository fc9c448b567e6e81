#include "serve/api.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "contract/validation.hpp"
#include "control/approvals.hpp"
#include "control/evidence.hpp"
#include "control/intake_preview.hpp"
#include "control/run_compare.hpp"
#include "control/workflow_cases.hpp"
#include "core/json_depth.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_service.hpp"
#include "queue/queue_store.hpp"
#include "serve/metrics.hpp"
#include "serve/run_catalog.hpp"
#include "serve/scheduler.hpp"
#include "serve/secret_redaction.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"

#include <cortexpilot/plugin.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <regex>
#include <sstream>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxArtifactBytes = 64u << 20;
constexpr size_t kDefaultPage = 50, kMaxPage = 1000;
constexpr size_t kDefaultEvents = 500, kMaxEvents = 5000;

ApiResponse error(int status, const std::string& code, const std::string& message, json details = nullptr) {
  ApiResponse r;
  r.status = status;
  json e{{"code", code}, {"message", message}};
  if (!details.is_null()) e["details"] = std::move(details);
  // Messages quote the request (its path, say), which need not be UTF-8: replaced, never thrown on.
  r.body = json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

ApiResponse ok_json(const json& j, int status = 200) {
  ApiResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// An answer built from a run's files (manifests, reports, events), with every secret in its strings
// redacted and their number in X-CP-Redacted: what a run wrote is untrusted text.
ApiResponse ok_view(json j) {
  RedactionCounts c = redact_json_strings(j);
  ApiResponse r = ok_json(j);
  r.headers.emplace_back("X-CP-Redacted", std::to_string(c.total()));
  if (c.total() > 0) r.headers.emplace_back("X-CP-Redacted-Kinds", c.summary());
  return r;
}

// Whether the caller asked for a run's evidence as written (`raw=1`), which only an admin gets; everyone
// else reads it redacted. Returns the refusal, or nullopt with `raw` set.
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

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Matches `path` against a pattern; fills params. {path} as the last pattern segment takes the rest.
bool match(const std::string& pattern, const std::string& path, std::map<std::string, std::string>& params) {
  auto ps = split_path(pattern), xs = split_path(path);
  params.clear();
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string& p = ps[i];
    bool var = p.size() > 2 && p.front() == '{' && p.back() == '}';
    if (var && p == "{path}" && i + 1 == ps.size()) {
      if (i >= xs.size()) return false;
      std::string rest;
      for (size_t k = i; k < xs.size(); ++k) rest += (k > i ? "/" : "") + xs[k];
      if (rest.empty()) return false;
      params["path"] = rest;
      return true;
    }
    if (i >= xs.size()) return false;
    if (var) {
      if (xs[i].empty()) return false;
      params[p.substr(1, p.size() - 2)] = xs[i];
    } else if (p != xs[i]) {
      return false;
    }
  }
  return ps.size() == xs.size();
}

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

bool bad_id(const std::string& id) {
  return !store::valid_run_id(id);
}

// A numeric query value (or header) read strictly: only decimal digits, no sign, no spaces, no trailing
// text, no overflow, within [lo, hi]. `limit=5abc` is refused, never read as 5. nullopt when invalid.
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

// An optional JSON object body ({"reason": ...}); nullopt when present but not an object.
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

// 422 with the same diagnostics `cp-host validate` prints; pointers under `prefix` when the contract came
// wrapped in {"contract": ...}.
// `body_file` is the name the submitted contract's diagnostics carry (a temp file's, for a preview).
ApiResponse invalid_contract(const std::string& message, const std::vector<contract::Diagnostic>& diagnostics,
                             const std::string& prefix, const std::string& body_file = "request body") {
  json diags = json::array();
  for (const auto& d : diagnostics) {
    // Only the submitted contract's pointers are inside the body; a diagnostic of another file (the
    // contract's pack) keeps its own pointer and says which file it is.
    bool body = d.file == body_file;
    diags.push_back({{"pointer", (body ? prefix : std::string()) + d.pointer},
                     {"file", body ? std::string("request body") : d.file},
                     {"rule", d.rule},
                     {"message", d.message},
                     {"text", contract::describe(d)},
                     {"expected", d.expected}});
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

}  // namespace

std::optional<std::string> url_decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char h) -> int {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return std::nullopt;
      out += d;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<fs::path> safe_subpath(const fs::path& base, const std::string& rel, std::string& why) {
  if (rel.empty()) {
    why = "empty path";
    return std::nullopt;
  }
  if (rel.front() == '/') {
    why = "absolute paths are refused";
    return std::nullopt;
  }
  if (rel.find('\0') != std::string::npos || rel.find('\\') != std::string::npos) {
    why = "NUL and backslash are refused in paths";
    return std::nullopt;
  }
  fs::path cur = base;
  struct stat st {};
  if (::lstat(base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    why = "no such folder";
    return std::nullopt;
  }
  for (const auto& seg : split_path(rel)) {
    if (seg.empty() || seg == "." || seg == "..") {
      why = "'..', '.' and empty segments are refused";
      return std::nullopt;
    }
    cur /= seg;
    if (::lstat(cur.c_str(), &st) != 0) {
      why = "not found";
      return std::nullopt;
    }
    if (S_ISLNK(st.st_mode)) {
      why = "symlinks are refused";
      return std::nullopt;
    }
  }
  return cur;
}

const std::vector<RouteInfo>& Api::routes() {
  static const std::vector<RouteInfo> r{
      {"GET", "/api/health", Role::none},
      {"GET", "/api/version", Role::viewer},
      {"GET", "/api/openapi.json", Role::none},
      {"GET", "/api/plugins", Role::viewer},
      {"GET", "/api/runs", Role::viewer},
      {"POST", "/api/runs", Role::operator_},
      {"GET", "/api/runs/{id}", Role::viewer},
      {"GET", "/api/runs/{id}/events", Role::viewer},
      {"GET", "/api/runs/{id}/events/stream", Role::viewer},
      {"GET", "/api/runs/{id}/reports/{name}", Role::viewer},
      {"GET", "/api/runs/{id}/artifacts/{path}", Role::viewer},
      {"POST", "/api/runs/{id}/cancel", Role::operator_},
      {"POST", "/api/runs/{id}/approve", Role::operator_},
      {"POST", "/api/runs/{id}/reject", Role::operator_},
      {"POST", "/api/runs/{id}/god-mode-approve", Role::admin},
      {"POST", "/api/runs/{id}/evidence/promote", Role::operator_},
      {"POST", "/api/runs/{id}/evidence/reject", Role::operator_},
      {"GET", "/api/runs/{id}/compare/{other}", Role::viewer},
      {"GET", "/api/approvals", Role::viewer},
      {"GET", "/api/workflows", Role::viewer},
      {"GET", "/api/workflows/{workflow_id}", Role::viewer},
      {"POST", "/api/intake/preview", Role::operator_},
      {"GET", "/api/queue", Role::viewer},
      {"GET", "/api/queue/{item_id}", Role::viewer},
      {"GET", "/metrics", Role::viewer},
  };
  return r;
}

struct Api::Ctx {
  const RouteInfo* route = nullptr;
  std::map<std::string, std::string> params;
  Principal who;
};

Api::Api(ApiConfig cfg, const TokenStore& tokens, RunCatalog& runs, queue::QueueService& queue,
         Scheduler* scheduler, const plugin::Registry* registry, Metrics& metrics)
    : cfg_(std::move(cfg)),
      tokens_(tokens),
      runs_(runs),
      queue_(queue),
      scheduler_(scheduler),
      registry_(registry),
      metrics_(metrics) {}

std::optional<ApiResponse> Api::refusal(const ApiRequest& req) const {
  Ctx ctx;
  return admit(req, ctx);
}

ApiResponse Api::handle(const ApiRequest& req) const {
  Ctx ctx;
  if (auto refused = admit(req, ctx)) return *refused;
  ApiResponse r;
  try {
    r = dispatch(req, ctx);
  } catch (const std::exception& e) {
    r = error(500, "internal", e.what());
  }
  r.route = ctx.route->pattern;
  r.token_id = ctx.who.token_id;
  return r;
}

std::optional<ApiResponse> Api::admit(const ApiRequest& req, Ctx& ctx) const {
  // Route first: an unknown path is 404 whoever asks; a known path with another method is 405.
  std::vector<std::string> allowed;
  for (const auto& r : routes()) {
    std::map<std::string, std::string> params;
    if (!match(r.pattern, req.path, params)) continue;
    if (r.method == req.method) {
      ctx.route = &r;
      ctx.params = std::move(params);
      break;
    }
    allowed.push_back(r.method);
  }
  if (!ctx.route) {
    ApiResponse r = allowed.empty()
                        ? error(404, "no_route", "no API route " + req.path + "; see GET /api/openapi.json")
                        : error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
    if (!allowed.empty()) {
      std::string a;
      for (const auto& m : allowed) a += (a.empty() ? "" : ", ") + m;
      r.headers.emplace_back("Allow", a);
    }
    r.route = "unmatched";
    return r;
  }
  for (auto& [k, v] : ctx.params) {
    auto d = url_decode(v);
    if (!d) {
      ApiResponse r = error(400, "bad_path", "malformed percent-escape in " + req.path);
      r.route = ctx.route->pattern;
      return r;
    }
    v = *d;
  }

  // Who is asking.
  auto auth = req.headers.find("authorization");
  if (auth != req.headers.end()) {
    const std::string& h = auth->second;
    std::optional<Principal> p;
    if (h.size() > 7 && (h.compare(0, 7, "Bearer ") == 0 || h.compare(0, 7, "bearer ") == 0))
      p = tokens_.authenticate(std::string_view(h).substr(7));
    if (!p) {
      ApiResponse r = error(401, "unauthorized", "the bearer token is not valid");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cp-host\", error=\"invalid_token\"");
      r.route = ctx.route->pattern;
      return r;
    }
    ctx.who = *p;
  }
  Role need = ctx.route->role;
  bool anonymous_ok = need == Role::none || (need == Role::viewer && cfg_.open_reads);
  if (ctx.who.role == Role::none && !anonymous_ok) {
    ApiResponse r =
        error(401, "unauthorized",
              "this route needs a bearer token (Authorization: Bearer <token>) with role " +
                  std::string(role_name(need)) + " or above; tokens come from `cp-host tokens add`");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cp-host\"");
    r.route = ctx.route->pattern;
    return r;
  }
  if (ctx.who.role != Role::none && ctx.who.role < need) {
    ApiResponse r = error(403, "forbidden",
                          "token '" + ctx.who.token_id + "' has role " + role_name(ctx.who.role) + "; " +
                              req.method + " " + ctx.route->pattern + " needs " + role_name(need));
    r.route = ctx.route->pattern;
    r.token_id = ctx.who.token_id;
    return r;
  }
  return std::nullopt;
}

ApiResponse Api::dispatch(const ApiRequest& req, Ctx& ctx) const {
  const std::string pat = ctx.route->pattern;
  const std::string& m = req.method;
  auto q = [&](const char* k) {
    auto it = req.query.find(k);
    return it == req.query.end() ? std::string() : it->second;
  };
  auto bundle_of = [&](const std::string& id) -> std::optional<fs::path> {
    if (bad_id(id)) return std::nullopt;
    return store::find_run(cfg_.root, id);
  };

  if (pat == "/api/health") {
    auto counts = queue_.counts();
    return ok_json({{"status", "ok"},
                    {"runs_indexed", runs_.size()},
                    {"queue", counts},
                    {"scheduler", scheduler_ ? "on" : "off"}});
  }
  if (pat == "/api/version")
    return ok_json(
        {{"version", cfg_.version},
         {"plugin_abi", std::to_string(CP_PLUGIN_ABI_MAJOR) + "." + std::to_string(CP_PLUGIN_ABI_MINOR)},
         {"api", "1"}});
  if (pat == "/api/openapi.json") {
    ApiResponse r;
    r.body = cfg_.openapi;
    return r;
  }
  if (pat == "/api/plugins") {
    json out{{"plugins", json::array()}};
    if (registry_)
      for (const auto& p : registry_->plugins()) out["plugins"].push_back(plugin::to_json(p, false));
    return ok_json(out);
  }
  if (pat == "/metrics") {
    std::ostringstream o;
    o << "# HELP cp_runs Runs in the runtime root by status (sealed runs by verdict).\n# TYPE cp_runs "
         "gauge\n";
    for (const auto& [s, n] : runs_.count_by_status())
      o << "cp_runs{status=\"" << prom_label(s) << "\"} " << n << "\n";
    o << "# HELP cp_gate_outcomes Gate verdicts over the runs in the root.\n# TYPE cp_gate_outcomes gauge\n";
    for (const auto& [g, vs] : runs_.gate_outcomes())
      for (const auto& [v, n] : vs)
        o << "cp_gate_outcomes{gate=\"" << prom_label(g) << "\",verdict=\"" << prom_label(v) << "\"} " << n
          << "\n";
    json counts = queue_.counts();
    o << "# HELP cp_queue_items Queue items by state.\n# TYPE cp_queue_items gauge\n";
    for (const char* s : {"queued", "claimed", "running", "done", "cancelled"})
      o << "cp_queue_items{state=\"" << s << "\"} " << counts.value(s, 0) << "\n";
    o << "# HELP cp_queue_depth Items waiting to run.\n# TYPE cp_queue_depth gauge\ncp_queue_depth "
      << counts.value("queued", 0) << "\n";
    if (scheduler_) {
      auto st = scheduler_->stats();
      o << "# HELP cp_scheduler_running Runs the scheduler has started and not yet reaped.\n"
        << "# TYPE cp_scheduler_running gauge\ncp_scheduler_running " << st.running << "\n"
        << "# TYPE cp_scheduler_started_total counter\ncp_scheduler_started_total " << st.started_total
        << "\n"
        << "# TYPE cp_scheduler_finished_total counter\ncp_scheduler_finished_total " << st.finished_total
        << "\n";
    }
    o << metrics_.render_requests();
    ApiResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = o.str();
    return r;
  }
  if (pat == "/api/runs" && m == "GET") {
    RunFilter f{q("status"), q("runner"), q("pack"), q("since")};
    if (!f.since.empty() && core::parse_iso_ms(f.since) < 0)
      return error(400, "bad_query", "since must be an ISO-8601 UTC time such as 2026-11-25T10:00:00Z");
    size_t limit = kDefaultPage;
    if (!q("limit").empty()) {
      auto l = strict_uint(q("limit"), 1, kMaxPage);
      if (!l) return bad_number("limit", q("limit"), "an integer from 1 to " + std::to_string(kMaxPage));
      limit = static_cast<size_t>(*l);
    }
    auto page = runs_.list(f, limit, q("cursor"));
    if (!page) return error(400, "bad_cursor", "cursor is not one this server gave out");
    json out{{"runs", page->runs}, {"count", page->runs.size()}};
    out["next_cursor"] = page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor);
    return ok_view(std::move(out));
  }
  if (pat == "/api/runs" && m == "POST") {
    if (req.body.empty())
      return error(400, "bad_body", "the body must be a JSON object: {\"contract\": {...}}");
    if (!core::json_depth_ok(req.body))
      return error(400, "bad_body",
                   "the body nests deeper than " + std::to_string(core::kMaxJsonDepth) + " levels");
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return error(400, "bad_body", "the body is not a JSON object");
    json contract = body.contains("contract") ? body["contract"] : body;
    queue::SubmitRequest sr;
    sr.contract = contract;
    sr.source = "request body";
    sr.submitted_by = ctx.who.token_id.empty() ? "anonymous" : ctx.who.token_id;
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
    // The repo must be one this server was told it may run on.
    fs::path repo = cfg_.default_repo;
    if (body.contains("repo")) {
      if (!body["repo"].is_string()) return error(422, "invalid", "/repo must be a string path");
      std::error_code ec;
      repo = fs::weakly_canonical(fs::path(body["repo"].get<std::string>()), ec);
      bool allowed = false;
      for (const auto& a : cfg_.allowed_repos) {
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
    sr.repo = repo;
    // Prefixes diagnostics' pointers when the contract came wrapped.
    std::string prefix = body.contains("contract") ? "/contract" : "";
    auto res = queue_.submit(sr);
    if (res.outcome == queue::SubmitResult::Outcome::invalid) {
      return invalid_contract(res.error, res.diagnostics, prefix);
    }
    if (res.outcome == queue::SubmitResult::Outcome::conflict) return error(409, "conflict", res.error);
    if (scheduler_) scheduler_->poke();
    ApiResponse r = ok_json(res.item, 202);
    r.headers.emplace_back("Location", "/api/queue/" + res.item.value("item_id", ""));
    return r;
  }
  if (pat == "/api/queue") {
    queue::ListFilter f;
    f.state = q("state");
    return ok_json(queue_.list(f));
  }
  if (pat == "/api/queue/{item_id}") {
    auto item = queue_.get(ctx.params["item_id"]);
    if (!item) return error(404, "not_found", "no queue item " + ctx.params["item_id"]);
    return ok_json(*item);
  }

  if (pat == "/api/approvals") {
    json pending = control::list_pending(cfg_.root);
    return ok_view({{"approvals", pending}, {"count", pending.size()}});
  }
  if (pat == "/api/workflows") {
    json all = control::list_workflow_cases(cfg_.root);
    return ok_view({{"workflows", all}, {"count", all.size()}});
  }
  if (pat == "/api/workflows/{workflow_id}") {
    auto c = control::read_workflow_case(cfg_.root, ctx.params["workflow_id"]);
    if (!c) return error(404, "not_found", "no workflow case " + ctx.params["workflow_id"]);
    return ok_view(std::move(*c));
  }
  if (pat == "/api/intake/preview") {
    if (req.body.empty() || !core::json_depth_ok(req.body))
      return error(400, "bad_body", "the body must be a JSON object: {\"contract\": {...}}");
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return error(400, "bad_body", "the body is not a JSON object");
    json contract = body.contains("contract") ? body["contract"] : body;
    // The preview reads a file, like a run: a private temp file outside the runs folder, removed after.
    fs::path dir = core::intake_dir(cfg_.root);
    fs::create_directories(dir);
    std::string tmpl = (dir / ".preview-XXXXXX").string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) return error(500, "internal", "cannot make a temp file under " + dir.string());
    std::string text = contract.dump();
    bool wrote = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    struct Remove {
      std::string p;
      ~Remove() { ::unlink(p.c_str()); }
    } remove{tmpl};
    if (!wrote) return error(500, "internal", "cannot write the contract to a temp file");
    auto r = control::intake_preview(tmpl, cfg_.root, cfg_.plugins_dir);
    if (!r.ok) {
      std::string prefix = body.contains("contract") ? "/contract" : "";
      return invalid_contract(r.error, r.diagnostics, prefix, tmpl);
    }
    return ok_json(r.report);
  }

  // Everything below is about one run.
  const std::string id = ctx.params["id"];
  if (bad_id(id))
    return error(400, "bad_id", "'" + id + "' is not a run id (letters, digits, '.', '_', '-')");

  if (pat == "/api/runs/{id}/cancel") {
    std::string item_id;
    if (queue_.get(id)) {
      item_id = id;
    } else if (auto dir = bundle_of(id)) {
      json man = core::read_json_file(*dir / "manifest.json");
      if (man.contains("queue")) item_id = man["queue"].value("item_id", "");
      if (item_id.empty())
        return error(
            409, "not_queued",
            "run " + id + " was not started by this server's queue; stop it where it runs (Ctrl-C, SIGTERM)");
    } else {
      return error(404, "not_found", "no run or queue item " + id);
    }
    std::string why = "cancelled through the API";
    if (!req.body.empty()) {
      json b = json::parse(req.body, nullptr, false);
      if (b.is_object() && b.contains("reason") && b["reason"].is_string())
        why = b["reason"].get<std::string>();
    }
    auto out = queue_.cancel(item_id, ctx.who.token_id.empty() ? "anonymous" : ctx.who.token_id, why);
    if (out == queue::CancelOutcome::already_ended)
      return error(409, "already_ended", "item " + item_id + " has already ended");
    if (out == queue::CancelOutcome::not_found) return error(404, "not_found", "no queue item " + item_id);
    if (scheduler_) scheduler_->poke();
    return ok_json({{"item_id", item_id},
                    {"outcome", out == queue::CancelOutcome::cancelled ? "cancelled" : "cancel_requested"}},
                   202);
  }

  auto dir = bundle_of(id);
  if (!dir) return error(404, "not_found", "no run " + id);

  if (pat == "/api/runs/{id}/approve" || pat == "/api/runs/{id}/reject" ||
      pat == "/api/runs/{id}/god-mode-approve") {
    auto b = object_body(req.body);
    if (!b)
      return error(400, "bad_body",
                   "the body, when given, must be a JSON object such as {\"reason\": \"...\"}");
    bool god = pat == "/api/runs/{id}/god-mode-approve";
    auto actor =
        control::token_holder(ctx.who.token_id, god ? "god_mode" : "human", string_field(*b, "reason"));
    auto r = control::decide(
        cfg_.root, id,
        pat == "/api/runs/{id}/reject" ? control::Decision::reject : control::Decision::approve, actor);
    runs_.update(id);
    return decision_response(r);
  }
  if (pat == "/api/runs/{id}/evidence/promote" || pat == "/api/runs/{id}/evidence/reject") {
    auto b = object_body(req.body);
    if (!b) return error(400, "bad_body", "the body must be a JSON object such as {\"branch\": \"...\"}");
    auto actor = control::token_holder(ctx.who.token_id, "human", string_field(*b, "reason"));
    if (pat == "/api/runs/{id}/evidence/reject")
      return evidence_response(control::reject_evidence(cfg_.root, id, actor));
    std::string branch = string_field(*b, "branch");
    if (branch.empty())
      return error(422, "invalid", "/branch: name the branch to promote onto, e.g. {\"branch\": \"cp/fix\"}");
    return evidence_response(control::promote(cfg_.root, id, branch, actor));
  }
  if (pat == "/api/runs/{id}/compare/{other}") {
    const std::string other = ctx.params["other"];
    if (bad_id(other)) return error(400, "bad_id", "'" + other + "' is not a run id");
    // A GET only reads: the report is computed and returned, never stored. Storing it would write into
    // B's sealed bundle on a viewer's behalf; `cp-host compare` is the way to keep one.
    auto r = control::compare_runs(cfg_.root, id, other, false);
    if (!r.ok && r.unverified) return error(409, "unverified", r.message);
    if (!r.ok) return error(r.missing ? 404 : 500, r.missing ? "not_found" : "internal", r.message);
    return ok_view(std::move(r.report));
  }
  if (pat == "/api/runs/{id}") {
    json man = core::read_json_file(*dir / "manifest.json");
    if (!man.is_object()) return error(500, "unreadable", "the manifest of run " + id + " cannot be read");
    json reports = json::array();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(*dir / "reports", ec))
      if (e.path().extension() == ".json") reports.push_back(e.path().stem().string());
    std::sort(reports.begin(), reports.end());
    json out{{"run_id", id}, {"manifest", man}, {"reports", reports}};
    // Verify-on-read: what a viewer reads of a sealed run says whether the bundle is as sealed.
    out["verification"] = verified_.check(*dir);
    return ok_view(std::move(out));
  }
  if (pat == "/api/runs/{id}/events") {
    bool raw = false;
    if (auto refused = raw_wanted(q("raw"), ctx.who, raw)) return *refused;
    unsigned long long after = 0;
    size_t limit = kDefaultEvents;
    constexpr auto kAny = std::numeric_limits<unsigned long long>::max();
    if (!q("after_seq").empty()) {
      auto a = strict_uint(q("after_seq"), 0, kAny);
      if (!a)
        return bad_number("after_seq", q("after_seq"), "an event sequence number (a non-negative integer)");
      after = *a;
    }
    if (!q("limit").empty()) {
      // Values past the maximum are read as the maximum (and 0 as 1): a client asking for "everything"
      // gets full pages, not an error.
      auto l = strict_uint(q("limit"), 0, kAny);
      if (!l) return bad_number("limit", q("limit"), "a non-negative integer");
      limit =
          static_cast<size_t>(std::min<unsigned long long>(kMaxEvents, std::max<unsigned long long>(1, *l)));
    }
    std::ifstream in(*dir / "events.jsonl");
    json events = json::array();
    std::string line;
    unsigned long long last = after;
    bool more = false;
    while (std::getline(in, line)) {
      if (line.empty() || !core::json_depth_ok(line)) continue;
      json e = json::parse(line, nullptr, false);
      if (!e.is_object()) continue;
      unsigned long long seq = e.value("seq", 0ULL);
      if (seq <= after) continue;
      if (events.size() == limit) {
        more = true;
        break;
      }
      events.push_back(std::move(e));
      last = seq;
    }
    json man = core::read_json_file(*dir / "manifest.json");
    json out{{"run_id", id},
             {"events", std::move(events)},
             {"next_after_seq", last},
             {"more", more},
             {"run_status", man.value("status", "")}};
    if (!raw) return ok_view(std::move(out));
    ApiResponse r = ok_json(out);
    r.headers.emplace_back("X-CP-Raw", "1");
    r.headers.emplace_back("Cache-Control", "no-store");
    r.raw = true;
    return r;
  }
  if (pat == "/api/runs/{id}/events/stream") {
    ApiResponse r;
    auto sse = std::make_shared<SseRequest>();
    sse->bundle = *dir;
    bool raw = false;
    if (auto refused = raw_wanted(q("raw"), ctx.who, raw)) return *refused;
    sse->redact = !raw;
    r.raw = raw;
    std::string from = q("after_seq"), from_name = "after_seq";
    if (auto h = req.headers.find("last-event-id"); h != req.headers.end()) {
      from = h->second;
      from_name = "Last-Event-ID";
    }
    if (!from.empty()) {
      auto a = strict_uint(from, 0, std::numeric_limits<unsigned long long>::max());
      if (!a) return bad_number(from_name, from, "an event sequence number (a non-negative integer)");
      sse->after_seq = *a;
    }
    r.sse = sse;
    r.content_type = "text/event-stream";
    return r;
  }
  if (pat == "/api/runs/{id}/reports/{name}") {
    bool raw = false;
    if (auto refused = raw_wanted(q("raw"), ctx.who, raw)) return *refused;
    std::string name = ctx.params["name"];
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) name.resize(name.size() - 5);
    static const std::regex ok_name("^[a-z0-9][a-z0-9_-]{0,63}$");
    if (!std::regex_match(name, ok_name))
      return error(400, "bad_name",
                   "report names are lower-case letters, digits, '_' and '-' (e.g. gate_diff_scope)");
    std::string why;
    auto p = safe_subpath(*dir / "reports", name + ".json", why);
    if (!p) return error(404, "not_found", "run " + id + " has no report " + name + " (" + why + ")");
    bool ok = false;
    std::string body = read_file(*p, ok);
    if (!ok) return error(404, "not_found", "run " + id + " has no report " + name);
    return evidence(std::move(body), "application/json", raw, "report " + name);
  }
  if (pat == "/api/runs/{id}/artifacts/{path}") {
    bool raw = false;
    if (auto refused = raw_wanted(q("raw"), ctx.who, raw)) return *refused;
    std::string why;
    auto p = safe_subpath(*dir / "artifacts", ctx.params["path"], why);
    if (!p) {
      int code = why == "not found" || why == "no such folder" ? 404 : 400;
      return error(code, code == 404 ? "not_found" : "bad_path",
                   "artifact '" + ctx.params["path"] + "' of run " + id + ": " + why);
    }
    // Never blocks: a FIFO a run left in its scratch folder must not hold this thread (and the API) forever.
    store::FileRead f = store::read_regular_file(*p, kMaxArtifactBytes);
    if (f.status == store::FileRead::Status::not_regular)
      return error(404, "not_found", "artifact '" + ctx.params["path"] + "' is not a file");
    if (f.status == store::FileRead::Status::too_large)
      return error(413, "too_large",
                   "artifact is larger than 64 MiB; read it from the bundle on disk: " + p->string());
    return evidence(std::move(f.bytes), content_type_for(*p), raw, "artifact '" + ctx.params["path"] + "'");
  }
  return error(500, "internal", "route " + pat + " has no handler");
}

}  // namespace cp::serve
