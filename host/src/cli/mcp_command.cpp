// `cp-host mcp`: a Model Context Protocol server on stdin/stdout, so that an agent's host (Codex, Claude
// Code, ...) can read runs, the queue, approvals and workflows, check contracts and, when allowed, submit,
// cancel and decide. JSON-RPC 2.0, one message per line, and nothing but messages on stdout: fd 1 is pointed
// at stderr while serving, so a stray print from any library lands in the log, never in the protocol.
//
// Each tool calls what the matching CLI command calls and answers that command's --json shape. Everything
// the client sends is hostile: lines are bounded, ids, params and arguments are checked against the tools'
// own schemas, run ids are checked before they name a folder, paths stay inside the project root, and a
// request that throws is answered with an error while the server keeps serving. What runs wrote is
// redacted as the API redacts it for viewers. Writes need --allow-writes and a token whose role serve would
// accept for the same route (serve/auth.hpp); see docs/mcp.md.
#include "chain/chain_spec.hpp"
#include "cli/commands.hpp"
#include "contract/validation.hpp"
#include "control/actor.hpp"
#include "control/approvals.hpp"
#include "control/patch_view.hpp"
#include "control/run_views.hpp"
#include "control/workflow_cases.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "core/json_schema.hpp"
#include "core/version.hpp"
#include "log/log_lanes.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_service.hpp"
#include "serve/auth.hpp"
#include "serve/secret_redaction.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/host_key.hpp"
#include "store/run_index.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ext/stdio_filebuf.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A line (one message) longer than this is dropped unread and answered with a parse error.
constexpr size_t kMcpMaxLine = size_t{4} << 20;
// An answer whose text is longer is refused: the client should ask for less.
constexpr size_t kMcpMaxAnswer = size_t{4} << 20;
// The same bound `cp-host queue submit` puts on a contract file.
constexpr uintmax_t kMcpMaxContractBytes = uintmax_t{16} << 20;
// A diff shown to a model: the API's shape, with tighter bounds (the counts still cover the whole patch).
constexpr control::PatchLimits kMcpPatchLimits{1000, 4000, 20000};
constexpr size_t kMcpDefaultEvents = 500, kMcpMaxEvents = 5000;
// The protocol versions spoken, newest first: the first is the answer to a client asking for another.
constexpr std::array<const char*, 3> kMcpProtocols{"2025-06-18", "2025-03-26", "2024-11-05"};

// JSON-RPC 2.0 error codes.
enum McpCode : int {
  kMcpParseError = -32700,
  kMcpInvalidRequest = -32600,
  kMcpNoMethod = -32601,
  kMcpBadParams = -32602,
  kMcpInternalError = -32603,
};

struct McpOptions {
  bool allow_writes = false;
  std::string token_file, tokens_file;
  std::string repo = ".";  // the repository a submission runs on when it names none
  std::vector<std::string> allow_repos;
};

// What the server knows while it serves.
struct McpContext {
  const Globals& g;
  McpOptions opts;
  fs::path root_real;                    // the root with every link resolved: what paths must stay under
  std::string token;                     // the bearer token writes are checked with ("" when none was given)
  serve::Role role = serve::Role::none;  // the token's role at start, which decides what is listed
  std::unique_ptr<plugin::Registry> registry;
  bool registry_tried = false;
};

// A tool's answer: a JSON object, or why the tool failed (with a JSON object saying more, when there is one).
struct McpAnswer {
  json value;
  std::string error;
};

McpAnswer mcp_ok(json v) {
  return {std::move(v), ""};
}
McpAnswer mcp_fail(std::string why, json more = json()) {
  return {std::move(more), std::move(why)};
}

struct McpTool {
  const char* name;
  const char* description;
  json input_schema;
  serve::Role needs;  // Role::none: a read, always served
  McpAnswer (*call)(McpContext&, const json& args);
};

// ---- argument helpers: the schema has checked the types, these never throw on what it let through ------

std::string mcp_text(const json& a, const char* key) {
  auto it = a.find(key);
  return it != a.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t mcp_number(const json& a, const char* key, int64_t fallback) {
  auto it = a.find(key);
  return it != a.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

// The text of a message, cut to `n` characters: what a client sent is echoed only that far.
std::string mcp_cut(const std::string& s, size_t n = 120) {
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

// ---- input schemas ----------------------------------------------------------------------------------

json mcp_schema(json properties, std::vector<std::string> required) {
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

json mcp_string(const char* description, size_t max_length) {
  return {{"type", "string"}, {"description", description}, {"minLength", 1}, {"maxLength", max_length}};
}

json mcp_integer(const char* description, int64_t minimum, int64_t maximum) {
  return {{"type", "integer"}, {"description", description}, {"minimum", minimum}, {"maximum", maximum}};
}

json mcp_run_id_schema() {
  return mcp_string("A run id, as list_runs gives it", 256);
}

json mcp_contract_properties() {
  return {{"contract",
           {{"type", "object"},
            {"description", "The task contract itself (a JSON object). Give this or path, not both"}}},
          {"path", mcp_string("A contract file relative to the project root (contracts/x.json); no absolute "
                              "path, no '..', no link leading out of the root. Give this or contract",
                              4096)}};
}

// ---- paths and runs -----------------------------------------------------------------------------------

// The regular file `rel` names under the root, or nullopt with why not: absolute paths, '..' and links that
// lead out of the root are refused, so a client can make cp-host read nothing outside the project.
std::optional<fs::path> mcp_file_in_root(const McpContext& c, const std::string& rel, std::string& why) {
  if (rel.empty() || rel.find('\0') != std::string::npos) {
    why = "path is empty or holds a NUL character";
    return std::nullopt;
  }
  const fs::path p(rel);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) {
    why = "path '" + mcp_cut(rel) + "' is absolute; give it relative to the project root";
    return std::nullopt;
  }
  for (const auto& part : p)
    if (part == "..") {
      why = "path '" + mcp_cut(rel) + "' climbs with '..'; give it inside the project root";
      return std::nullopt;
    }
  std::error_code ec;
  const fs::path real = fs::canonical(c.root_real / p, ec);
  if (ec) {
    why = "path '" + mcp_cut(rel) + "' does not exist under the project root";
    return std::nullopt;
  }
  const fs::path inside = real.lexically_relative(c.root_real);
  if (inside.empty() || *inside.begin() == "..") {
    why = "path '" + mcp_cut(rel) + "' leads out of the project root through a link";
    return std::nullopt;
  }
  if (!fs::is_regular_file(real, ec)) {
    why = "path '" + mcp_cut(rel) + "' is not a regular file";
    return std::nullopt;
  }
  return real;
}

// The bundle of the run `args.run_id` names, or nullopt with why not (an id that is not one never reaches
// the file system).
std::optional<fs::path> mcp_run_dir(const McpContext& c, const json& args, std::string& id,
                                    std::string& why) {
  id = mcp_text(args, "run_id");
  if (!store::valid_run_id(id)) {
    why = "'" + mcp_cut(id) + "' is not a run id (see list_runs)";
    return std::nullopt;
  }
  auto dir = store::find_run(c.g.root, id);
  if (!dir) why = "no run '" + id + "' under this project root (see list_runs)";
  return dir;
}

// The loaded plugins (validation checks references to them), loaded once; null when they cannot be (the
// reason is on stderr).
const plugin::Registry* mcp_registry(McpContext& c) {
  if (!c.registry_tried) {
    c.registry_tried = true;
    auto reg = std::make_unique<plugin::Registry>();
    if (load_plugins(c.g, *reg)) c.registry = std::move(reg);
  }
  return c.registry.get();
}

// ---- read tools ---------------------------------------------------------------------------------------

McpAnswer mcp_list_runs(McpContext& c, const json& a) {
  store::RunQuery q;
  q.status = mcp_text(a, "status");
  q.verdict = mcp_text(a, "verdict");
  q.runner = mcp_text(a, "runner");
  q.pack = mcp_text(a, "pack");
  q.workflow = mcp_text(a, "workflow");
  q.since = mcp_text(a, "since");
  q.text = mcp_text(a, "search");
  q.kind = mcp_text(a, "kind");
  std::string param;
  if (auto problem = store::query_problem(q, param); !problem.empty()) return mcp_fail(problem);
  const auto limit = static_cast<size_t>(mcp_number(a, "limit", 50));
  auto runs = store::list_runs(c.g.root);
  std::erase_if(runs, [&](const store::RunSummary& r) { return !store::matches(r, q); });
  if (runs.size() > limit) runs.resize(limit);
  json rows = json::array();
  for (const auto& r : runs) rows.push_back(store::to_json(r));
  return mcp_ok({{"runs", rows}, {"count", rows.size()}});
}

McpAnswer mcp_show_run(McpContext& c, const json& a) {
  std::string id, why;
  auto dir = mcp_run_dir(c, a, id, why);
  if (!dir) return mcp_fail(why);
  json m = core::read_json_file(*dir / "manifest.json");
  if (!m.is_object()) return mcp_fail("the manifest of run " + id + " is missing or not JSON");
  // As `runs show`: what is shown is checked against the seal, and a changed bundle is an error.
  store::KeyRing keys;
  try {
    keys = store::KeyRing::of_dir(store::key_dir());
  } catch (const store::KeyError&) {
  }
  store::BundleCheck check = store::verify_settled(*dir, keys);
  if (check.state == store::BundleCheck::State::tampered)
    return mcp_fail("run " + id + " does not verify: " + check.problems.front() + " (`cp-host runs verify " +
                    id + "`)");
  return mcp_ok(std::move(m));
}

// The events of a run after `after`, at most `limit`, as GET /api/runs/{id}/events pages them. The log is
// opened without following a link or blocking, so a FIFO planted in a bundle cannot hold the server.
McpAnswer mcp_run_events(McpContext& c, const json& a) {
  std::string id, why;
  auto dir = mcp_run_dir(c, a, id, why);
  if (!dir) return mcp_fail(why);
  const auto limit = static_cast<size_t>(mcp_number(a, "limit", kMcpDefaultEvents));
  const auto after = static_cast<uint64_t>(mcp_number(a, "after_seq", 0));
  const std::string type = mcp_text(a, "type");
  int fd = ::open((*dir / "events.jsonl").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  struct stat st {};
  if (fd < 0) return mcp_fail("run " + id + " has no readable events log");
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return mcp_fail("the events log of run " + id + " is not a regular file");
  }
  __gnu_cxx::stdio_filebuf<char> buf(fd, std::ios::in);
  std::istream in(&buf);
  json page = json::array();
  std::string line;
  uint64_t last = after;
  bool more = false;
  while (std::getline(in, line)) {
    if (line.empty() || !core::json_depth_ok(line)) continue;
    json e = json::parse(line, nullptr, false);
    if (!e.is_object()) continue;
    auto seq_it = e.find("seq");
    const uint64_t seq = seq_it != e.end() && seq_it->is_number_unsigned() ? seq_it->get<uint64_t>() : 0;
    if (seq <= after) continue;
    auto type_it = e.find("type");
    if (!type.empty() && (type_it == e.end() || *type_it != type)) continue;
    if (page.size() == limit) {
      more = true;
      break;
    }
    page.push_back(std::move(e));
    last = seq;
  }
  json man = core::read_json_file(*dir / "manifest.json");
  return mcp_ok({{"run_id", id},
                 {"events", std::move(page)},
                 {"next_after_seq", last},
                 {"more", more},
                 {"run_status", man.is_object() ? mcp_text(man, "status") : std::string()}});
}

McpAnswer mcp_run_diff(McpContext& c, const json& a) {
  std::string id, why;
  auto dir = mcp_run_dir(c, a, id, why);
  if (!dir) return mcp_fail(why);
  std::string text;
  control::ViewResult v = control::read_patch(*dir, text);
  if (v.status != control::ViewResult::Status::ok) return mcp_fail("run " + id + ": " + v.message);
  json view = control::parse_patch(text, kMcpPatchLimits);
  view["run_id"] = id;
  return mcp_ok(std::move(view));
}

McpAnswer mcp_queue_list(McpContext& c, const json& a) {
  queue::QueueService svc(c.g.root, nullptr);
  const bool active = a.contains("active") && a["active"].is_boolean() && a["active"].get<bool>();
  return mcp_ok(svc.list({mcp_text(a, "state"), !active}));
}

McpAnswer mcp_approvals_list(McpContext& c, const json&) {
  json pending = control::list_pending(c.g.root);
  return mcp_ok({{"approvals", pending}, {"count", pending.size()}});
}

McpAnswer mcp_workflows_list(McpContext& c, const json&) {
  json all = control::list_workflow_cases(c.g.root);
  return mcp_ok({{"workflows", all}, {"count", all.size()}});
}

// Exactly one of `contract` and `path`; false with why otherwise.
bool mcp_one_contract(const json& a, std::string& why) {
  const bool inline_given = a.contains("contract"), path_given = a.contains("path");
  if (inline_given == path_given)
    why = "give the contract either inline (contract) or as a file (path), once";
  return inline_given != path_given;
}

// `validate --format json`'s report.
json mcp_report_json(const contract::ValidationReport& r) {
  json out{{"ok", r.ok()},
           {"files_checked", r.files_checked},
           {"files_invalid", r.files_invalid},
           {"error_count", r.diagnostics.size()},
           {"duration_ms", r.duration.count()},
           {"diagnostics", json::array()}};
  for (const auto& d : r.diagnostics)
    out["diagnostics"].push_back({{"file", d.file},
                                  {"line", d.line},
                                  {"pointer", d.pointer},
                                  {"rule", d.rule},
                                  {"message", d.message},
                                  {"value", d.value},
                                  {"expected", d.expected},
                                  {"schema", d.schema}});
  return out;
}

// A private folder holding an inline contract while it is validated; removed with the object.
class McpScratch {
 public:
  McpScratch() {
    std::string t = (fs::temp_directory_path() / "cp-mcp-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::system_error(errno, std::generic_category(), "make " + t);
    dir_ = t;
  }
  ~McpScratch() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  McpScratch(const McpScratch&) = delete;
  McpScratch& operator=(const McpScratch&) = delete;
  fs::path write(const json& doc) const {
    fs::path p = dir_ / "contract.json";
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << doc.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write the contract to validate under " + dir_.string());
    return p;
  }

 private:
  fs::path dir_;
};

// Validates as `cp-host validate` does: a file by its folder and content (a chain as `chain run` loads it),
// an inline contract as a task contract.
McpAnswer mcp_validate_contract(McpContext& c, const json& a) {
  std::string why;
  if (!mcp_one_contract(a, why)) return mcp_fail(why);
  const plugin::Registry* reg = mcp_registry(c);
  if (!reg)
    return mcp_fail(
        "the plugins cannot be loaded, so references to them cannot be checked (see the "
        "server's stderr, and `cp-host plugins list`)");
  contract::ValidateOptions vo;
  vo.root = c.g.root;
  vo.registry = reg;
  vo.check_plugins = true;
  vo.jobs = 1;
  vo.check_chain = [&c](const fs::path& file, const plugin::Registry* plugins) {
    chain::LoadResult loaded = chain::load_chain(file, c.g.root, c.g.plugins_dir, plugins);
    if (!loaded.spec.staging.empty()) {
      std::error_code ec;
      fs::remove_all(loaded.spec.staging, ec);
    }
    std::vector<contract::Diagnostic> out = std::move(loaded.diagnostics);
    if (out.empty() && !loaded.ok && !loaded.error.empty())
      out.push_back({file.string(), 1, "", "chain", loaded.error, "", "", "task_chain"});
    return out;
  };
  if (a.contains("path")) {
    const std::string rel = mcp_text(a, "path");
    if (!mcp_file_in_root(c, rel, why)) return mcp_fail(why);
    vo.paths = {c.g.root / rel};
    return mcp_ok(mcp_report_json(contract::validate(vo)));
  }
  McpScratch scratch;
  const fs::path file = scratch.write(a["contract"]);
  vo.paths = {file};
  vo.forced_schema = "task_contract";
  contract::ValidationReport report = contract::validate(vo);
  for (auto& d : report.diagnostics)
    if (fs::path(d.file).filename() == file.filename()) d.file = "(inline contract)";
  return mcp_ok(mcp_report_json(report));
}

// ---- write tools --------------------------------------------------------------------------------------

// The holder of the server's token now: the token file is read again for every write, so a token revoked
// with `cp-host tokens revoke` stops writing at once. Empty with why when `needs` is not met.
std::optional<serve::Principal> mcp_writer(const McpContext& c, const char* tool, serve::Role needs,
                                           std::string& why) {
  if (!c.opts.allow_writes) {
    why = std::string(tool) +
          " is a write tool and this server was started without --allow-writes; start it as `cp-host mcp "
          "--allow-writes --tokens FILE` with an operator or admin token (CP_HOST_TOKEN or --token-file)";
    return std::nullopt;
  }
  serve::TokenStore tokens;
  try {
    tokens = serve::TokenStore::load(c.opts.tokens_file);
  } catch (const std::exception& e) {
    why = std::string("the token file cannot be read: ") + e.what();
    return std::nullopt;
  }
  auto who = tokens.authenticate(c.token);
  if (!who) {
    why = "the server's token is no longer in " + c.opts.tokens_file + " (revoked?)";
    return std::nullopt;
  }
  if (who->role < needs) {
    why = std::string(tool) + " needs an " + serve::role_name(needs) +
          " or admin token; the server's token '" + who->token_id + "' has role " +
          serve::role_name(who->role) + " (make one with `cp-host tokens add --role operator`)";
    return std::nullopt;
  }
  return who;
}

// The contract of a submission and how diagnostics name it; false with why.
bool mcp_submitted_contract(const McpContext& c, const json& a, queue::SubmitRequest& r, std::string& why) {
  if (!mcp_one_contract(a, why)) return false;
  if (a.contains("contract")) {
    r.contract = a["contract"];
    r.source = "(inline contract)";
    return true;
  }
  const std::string rel = mcp_text(a, "path");
  auto file = mcp_file_in_root(c, rel, why);
  if (!file) return false;
  std::error_code ec;
  if (fs::file_size(*file, ec) > kMcpMaxContractBytes || ec) {
    why = rel + " is over 16 MiB (or cannot be sized); refused unread";
    return false;
  }
  r.contract = core::read_json_file(*file, r.source_text);
  if (!r.contract.is_object()) {
    why = rel + " is not a JSON object; see validate_contract";
    return false;
  }
  r.source = rel;
  return true;
}

// The repository a submission runs on: the server's --repo, or one the client names inside an --allow-repo
// folder (as serve's read_repo allows it).
std::optional<fs::path> mcp_repo(const McpContext& c, const json& a, std::string& why) {
  if (!a.contains("repo")) return fs::path(c.opts.repo);
  std::error_code ec;
  const fs::path repo = fs::weakly_canonical(fs::absolute(mcp_text(a, "repo")), ec);
  for (const auto& allowed : c.opts.allow_repos) {
    const fs::path base = fs::weakly_canonical(fs::absolute(allowed), ec);
    const fs::path rel = repo.lexically_relative(base);
    if (!rel.empty() && *rel.begin() != "..") return repo;
  }
  why = "repo " + mcp_cut(repo.string()) +
        " is not one this server may run on; start it with --allow-repo naming it (or a folder above it), "
        "or leave repo out for the server's --repo";
  return std::nullopt;
}

McpAnswer mcp_submit_contract(McpContext& c, const json& a) {
  std::string why;
  auto who = mcp_writer(c, "submit_contract", serve::Role::operator_, why);
  if (!who) return mcp_fail(why);
  queue::SubmitRequest r;
  if (!mcp_submitted_contract(c, a, r, why)) return mcp_fail(why);
  auto repo = mcp_repo(c, a, why);
  if (!repo) return mcp_fail(why);
  r.repo = *repo;
  if (a.contains("priority")) r.priority = static_cast<int>(mcp_number(a, "priority", 5));
  for (const auto& d : a.value("depends_on", json::array()))
    if (d.is_string()) r.depends_on.push_back(d.get<std::string>());
  r.run_after = mcp_text(a, "run_after");
  r.deadline = mcp_text(a, "deadline");
  r.start_by = mcp_text(a, "start_by");
  r.submitted_by = who->token_id;
  const plugin::Registry* reg = mcp_registry(c);
  if (!reg) return mcp_fail("the plugins cannot be loaded, so the contract cannot be checked (see stderr)");
  queue::QueueService svc(c.g.root, reg);
  auto res = svc.submit(r);
  if (res.outcome != queue::SubmitResult::Outcome::queued) {
    std::string text = res.error + "; nothing was queued";
    for (const auto& d : res.diagnostics) text += "\n" + contract::diagnostic_line(d);
    return mcp_fail(text,
                    {{"error", res.error}, {"diagnostics", contract::diagnostics_json(res.diagnostics)}});
  }
  return mcp_ok(res.item);
}

McpAnswer mcp_cancel_queue_item(McpContext& c, const json& a) {
  std::string why;
  auto who = mcp_writer(c, "cancel_queue_item", serve::Role::operator_, why);
  if (!who) return mcp_fail(why);
  const std::string item = mcp_text(a, "item_id");
  std::string reason = mcp_text(a, "reason");
  if (reason.empty()) reason = "cancelled through MCP";
  queue::QueueService svc(c.g.root, nullptr);
  switch (svc.cancel(item, who->token_id, reason)) {
    case queue::CancelOutcome::cancelled:
      return mcp_ok({{"item_id", item}, {"outcome", "cancelled"}});
    case queue::CancelOutcome::requested:
      return mcp_ok({{"item_id", item}, {"outcome", "cancel_requested"}});
    case queue::CancelOutcome::already_ended:
      return mcp_fail("item " + item + " has already ended");
    case queue::CancelOutcome::not_found:
      break;
  }
  return mcp_fail("no queue item '" + mcp_cut(item) + "' (see queue_list)");
}

// `approve`'s and `reject`'s exit codes, which their --json answers carry.
int mcp_decision_exit(control::DecisionResult::Outcome o) {
  using O = control::DecisionResult::Outcome;
  switch (o) {
    case O::recorded:
    case O::approved:
    case O::rejected:
      return kOk;
    case O::invalid:
      return kUsage;
    case O::from_run:
      return kFromRun;
    case O::error:
      return kInternal;
    default:
      return kInvalid;
  }
}

// A decision as `approve --json` prints it. control::decide refuses, before reading anything, a decision
// asked from inside a run's process tree (from_run, exit 11): an agent running under cp-host never decides
// about a run, through this server or otherwise.
McpAnswer mcp_decide(McpContext& c, const json& a, control::Decision decision, const char* tool) {
  std::string why;
  auto who = mcp_writer(c, tool, serve::Role::operator_, why);
  if (!who) return mcp_fail(why);
  const std::string id = mcp_text(a, "run_id");
  if (!store::valid_run_id(id)) return mcp_fail("'" + mcp_cut(id) + "' is not a run id (see approvals_list)");
  auto r = control::decide(c.g.root, id, decision,
                           control::token_holder(who->token_id, "human", mcp_text(a, "reason")));
  const int code = mcp_decision_exit(r.outcome);
  json j{{"outcome", control::outcome_name(r.outcome)}, {"message", r.message}, {"exit_code", code}};
  if (r.manifest.is_object()) {
    j["status"] = r.manifest.value("status", "");
    if (r.manifest.contains("verdict")) j["verdict"] = r.manifest["verdict"];
    if (r.manifest.contains("approval")) j["approval"] = r.manifest["approval"];
  }
  if (code != kOk) return mcp_fail(r.message, j);
  return mcp_ok(j);
}

McpAnswer mcp_approve_run(McpContext& c, const json& a) {
  return mcp_decide(c, a, control::Decision::approve, "approve_run");
}

McpAnswer mcp_reject_run(McpContext& c, const json& a) {
  return mcp_decide(c, a, control::Decision::reject, "reject_run");
}

// ---- the tool table -----------------------------------------------------------------------------------

std::vector<McpTool> mcp_build_tools() {
  using serve::Role;
  const json reason = mcp_string("Why, recorded with the decision", 2000);
  std::vector<McpTool> t;
  t.push_back(
      {"list_runs",
       "Runs under the project root, newest first, from each bundle's manifest (as `cp-host runs list "
       "--json`): {runs: [{run_id, status, verdict, reason, task_id, title, runner, pack, "
       "created_at, ...}], count}. Every filter given must match.",
       mcp_schema({{"limit", mcp_integer("At most this many runs (default 50)", 1, 1000)},
                   {"status", mcp_string("Only runs with this status or verdict", 64)},
                   {"verdict", mcp_string("success, failure, denied, timeout, cancelled, error, or "
                                          "awaiting_approval",
                                          64)},
                   {"runner", mcp_string("Only runs of this runner", 128)},
                   {"pack", mcp_string("Only runs of this pack", 128)},
                   {"workflow", mcp_string("Only runs of this workflow_id", 256)},
                   {"since", mcp_string("Only runs created at or after this ISO-8601 UTC time", 64)},
                   {"search", mcp_string("Case-insensitive text in the run id, task id or title", 200)},
                   {"kind",
                    {{"type", "string"},
                     {"enum", {"run", "chain"}},
                     {"description", "Contracts' runs (run) or chains' own bundles (chain)"}}}},
                  {}),
       Role::none, mcp_list_runs});
  t.push_back({"show_run",
               "One run's manifest (as `cp-host runs show RUN --json`): status, verdict, reason, gates, "
               "reports. An error when the bundle does not verify against its seal.",
               mcp_schema({{"run_id", mcp_run_id_schema()}}, {"run_id"}), Role::none, mcp_show_run});
  t.push_back(
      {"run_events",
       "A page of one run's hash-chained events (as GET /api/runs/{id}/events): {run_id, events: [{seq, "
       "ts, type, payload, ...}], next_after_seq, more, run_status}. Page on with after_seq.",
       mcp_schema(
           {{"run_id", mcp_run_id_schema()},
            {"limit",
             mcp_integer("At most this many events (default 500)", 1, static_cast<int64_t>(kMcpMaxEvents))},
            {"after_seq", mcp_integer("Only events after this sequence number (default 0)", 0, INT64_MAX)},
            {"type", mcp_string("Only events of this type (RUN_SEALED, GATE_FAILED, ...)", 128)}},
           {"run_id"}),
       Role::none, mcp_run_events});
  t.push_back(
      {"run_diff",
       "What a run changed, from its recorded patch (as `cp-host runs diff RUN --json`): {run_id, files: "
       "[{path, status, added, removed, hunks}], totals, truncated}.",
       mcp_schema({{"run_id", mcp_run_id_schema()}}, {"run_id"}), Role::none, mcp_run_diff});
  t.push_back(
      {"queue_list",
       "The run queue in run order, then the rest (as `cp-host queue list --json`): {items: [{item_id, "
       "state, task_id, priority, eligible, waiting_on, sla_state, attempts, ...}], counts, problems}.",
       mcp_schema({{"state",
                    {{"type", "string"},
                     {"enum", {"queued", "claimed", "running", "done", "cancelled"}},
                     {"description", "Only items in this state"}}},
                   {"active", {{"type", "boolean"}, {"description", "Hide items that have ended"}}}},
                  {}),
       Role::none, mcp_queue_list});
  t.push_back(
      {"approvals_list",
       "Runs waiting for a human decision, oldest request first (as `cp-host approvals list --json`): "
       "{approvals: [{run_id, task_id, pack, requested_at, deadline, approvers_required, approvals}], "
       "count}.",
       mcp_schema(json::object(), {}), Role::none, mcp_approvals_list});
  t.push_back({"workflows_list",
               "Workflow cases, the runs that share a workflow_id (as `cp-host workflows list --json`): "
               "{workflows: [{workflow_id, status, verdict, latest_run_id, run_count, updated_at}], count}.",
               mcp_schema(json::object(), {}), Role::none, mcp_workflows_list});
  t.push_back(
      {"validate_contract",
       "Check a task contract as `cp-host validate --format json` does (schema, pack, runner, roles, "
       "policies): {ok, files_checked, files_invalid, error_count, diagnostics: [{file, line, pointer, "
       "rule, message, value, expected, schema}]}.",
       mcp_schema(mcp_contract_properties(), {}), Role::none, mcp_validate_contract});
  json submit = mcp_contract_properties();
  submit["repo"] = mcp_string(
      "The git repository to run on (default: the server's --repo); must lie under "
      "one of the server's --allow-repo folders",
      4096);
  submit["priority"] = mcp_integer("0..9, higher runs first (default: the contract's, else 5)", 0, 9);
  submit["depends_on"] = {{"type", "array"},
                          {"items", mcp_string("A queue item id", 256)},
                          {"maxItems", 64},
                          {"description", "Run only after these queue items ended in success"}};
  submit["run_after"] = mcp_string("Not before this time (ISO-8601 UTC)", 64);
  submit["deadline"] = mcp_string("Should have finished by this time (ISO-8601 UTC)", 64);
  submit["start_by"] = mcp_string("Should have started by this time (ISO-8601 UTC)", 64);
  t.push_back(
      {"submit_contract",
       "Check a task contract and queue it for `cp-host serve` to run (as `cp-host queue submit "
       "--json`): the queued item {item_id, state, task_id, priority, ...}. Nothing is queued when the "
       "contract is invalid.",
       mcp_schema(submit, {}), Role::operator_, mcp_submit_contract});
  t.push_back(
      {"cancel_queue_item",
       "Cancel a queue item: a waiting one ends at once, a running one is stopped by serve: {item_id, "
       "outcome: cancelled | cancel_requested}.",
       mcp_schema({{"item_id", mcp_string("A queue item id, as queue_list gives it", 256)},
                   {"reason", mcp_string("Recorded with the cancel", 2000)}},
                  {"item_id"}),
       Role::operator_, mcp_cancel_queue_item});
  t.push_back({"approve_run",
               "Approve a run awaiting approval (as `cp-host approve RUN --json`): {outcome, message, "
               "exit_code, status, verdict, approval}. The token holder is recorded as the approver.",
               mcp_schema({{"run_id", mcp_run_id_schema()}, {"reason", reason}}, {"run_id"}), Role::operator_,
               mcp_approve_run});
  t.push_back({"reject_run",
               "Reject a run awaiting approval: it seals as denied (as `cp-host reject RUN --json`).",
               mcp_schema({{"run_id", mcp_run_id_schema()}, {"reason", reason}}, {"run_id"}), Role::operator_,
               mcp_reject_run});
  return t;
}

// The tools and their compiled input schemas, built once.
struct McpToolSet {
  std::vector<McpTool> tools;
  std::vector<core::JsonSchema> schemas;
};

const McpToolSet& mcp_tools() {
  static const McpToolSet set = [] {
    McpToolSet s;
    s.tools = mcp_build_tools();
    for (const auto& t : s.tools) s.schemas.push_back(core::JsonSchema::compile(t.input_schema));
    return s;
  }();
  return set;
}

// Whether tools/list shows `t`: reads always, writes with --allow-writes and a token that may use them.
bool mcp_listed(const McpContext& c, const McpTool& t) {
  return t.needs == serve::Role::none || (c.opts.allow_writes && c.role >= t.needs);
}

// ---- JSON-RPC -----------------------------------------------------------------------------------------

// A request's answer: a result, or an error code and message.
struct McpReply {
  json result;
  int code = 0;
  std::string message;
};

McpReply mcp_error_reply(int code, std::string message) {
  return {json(), code, std::move(message)};
}

McpReply mcp_initialize(const json& params) {
  auto it = params.find("protocolVersion");
  if (it == params.end() || !it->is_string())
    return mcp_error_reply(kMcpBadParams, "initialize needs params.protocolVersion (a string)");
  const std::string asked = it->get<std::string>();
  std::string chosen = kMcpProtocols.front();
  for (const char* v : kMcpProtocols)
    if (asked == v) chosen = v;
  return {{{"protocolVersion", chosen},
           {"capabilities", {{"tools", {{"listChanged", false}}}}},
           {"serverInfo",
            {{"name", "cp-host"}, {"title", "cp-host control plane"}, {"version", CP_HOST_VERSION}}},
           {"instructions",
            "cp-host runs task contracts for coding agents into sealed, verifiable run bundles. Read runs, "
            "their events and diffs, the queue, approvals and workflows; check contracts with "
            "validate_contract. Write tools are listed only when the server allows writes."}},
          0,
          ""};
}

McpReply mcp_tools_list(const McpContext& c) {
  json list = json::array();
  for (const auto& t : mcp_tools().tools) {
    if (!mcp_listed(c, t)) continue;
    const bool read = t.needs == serve::Role::none;
    list.push_back({{"name", t.name},
                    {"description", t.description},
                    {"inputSchema", t.input_schema},
                    {"annotations",
                     {{"readOnlyHint", read},
                      {"destructiveHint",
                       std::string(t.name) == "reject_run" || std::string(t.name) == "cancel_queue_item"},
                      {"openWorldHint", false}}}});
  }
  return {{{"tools", list}}, 0, ""};
}

json mcp_text_content(std::string text) {
  return {{"type", "text"}, {"text", std::move(text)}};
}

// A tool's answer as MCP carries it: the JSON as text, and as structured content when it is an object.
json mcp_tool_result(McpAnswer a) {
  serve::redact_json_strings(a.value);
  if (!a.error.empty()) serve::redact_secrets(a.error);
  std::string text = a.error.empty() ? a.value.dump(-1, ' ', false, json::error_handler_t::replace) : a.error;
  if (!a.error.empty() && a.value.is_object())
    text += "\n" + a.value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMcpMaxAnswer)
    return {
        {"content", json::array({mcp_text_content("the answer is " + std::to_string(text.size()) +
                                                  " bytes, over the " + std::to_string(kMcpMaxAnswer >> 20) +
                                                  " MiB this server sends; ask for less (limit)")})},
        {"isError", true}};
  json out{{"content", json::array({mcp_text_content(std::move(text))})}, {"isError", !a.error.empty()}};
  if (a.value.is_object()) out["structuredContent"] = std::move(a.value);
  return out;
}

McpReply mcp_tools_call(McpContext& c, const json& params) {
  auto name_it = params.find("name");
  if (name_it == params.end() || !name_it->is_string())
    return mcp_error_reply(kMcpBadParams, "tools/call needs params.name (a string)");
  const std::string name = name_it->get<std::string>();
  json args = params.contains("arguments") ? params["arguments"] : json::object();
  if (args.is_null()) args = json::object();
  if (!args.is_object()) return mcp_error_reply(kMcpBadParams, "params.arguments must be a JSON object");
  const McpToolSet& set = mcp_tools();
  for (size_t i = 0; i < set.tools.size(); ++i) {
    const McpTool& t = set.tools[i];
    if (name != t.name) continue;
    // A write tool the server does not offer is refused before its arguments are read, naming what enables
    // it.
    std::string why;
    if (t.needs != serve::Role::none && !mcp_writer(c, t.name, t.needs, why))
      return {mcp_tool_result(mcp_fail(why)), 0, ""};
    auto violations = set.schemas[i].validate(args);
    if (!violations.empty()) {
      const auto& v = violations.front();
      return mcp_error_reply(kMcpBadParams, "invalid arguments for " + name + ": " +
                                                (v.pointer.empty() ? "/" : v.pointer) + ": " + v.message +
                                                (v.expected.empty() ? "" : " (expected " + v.expected + ")"));
    }
    try {
      return {mcp_tool_result(t.call(c, args)), 0, ""};
    } catch (const std::exception& e) {
      return {mcp_tool_result(mcp_fail(std::string(name) + " failed: " + e.what())), 0, ""};
    }
  }
  return mcp_error_reply(kMcpBadParams, "unknown tool: " + mcp_cut(name));
}

McpReply mcp_dispatch(McpContext& c, const std::string& method, const json& params) {
  if (method == "initialize") return mcp_initialize(params);
  if (method == "ping") return {json::object(), 0, ""};
  if (method == "tools/list") return mcp_tools_list(c);
  if (method == "tools/call") return mcp_tools_call(c, params);
  return mcp_error_reply(kMcpNoMethod, "method not found: " + mcp_cut(method));
}

json mcp_error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

// The answer to one line from the client; nullopt when there is nothing to answer (a notification, or a
// response to a request this server never sends).
std::optional<json> mcp_respond(McpContext& c, const std::string& line) {
  if (!core::json_depth_ok(line))
    return mcp_error(nullptr, kMcpParseError,
                     "parse error: nested deeper than " + std::to_string(core::kMaxJsonDepth) + " levels");
  json msg = json::parse(line, nullptr, false);
  if (msg.is_discarded()) return mcp_error(nullptr, kMcpParseError, "parse error: the line is not JSON");
  if (!msg.is_object())
    return mcp_error(nullptr, kMcpInvalidRequest,
                     msg.is_array() ? "batches are not supported: send one message per line"
                                    : "a message must be a JSON object");
  const bool has_id = msg.contains("id");
  const json id = has_id ? msg["id"] : json();
  const bool id_ok = !has_id || id.is_string() || id.is_number_integer();
  auto method_it = msg.find("method");
  if (method_it == msg.end()) {
    if (msg.contains("result") || msg.contains("error")) return std::nullopt;
    return mcp_error(id_ok ? id : json(), kMcpInvalidRequest, "invalid request: no method");
  }
  if (!id_ok)
    return mcp_error(nullptr, kMcpInvalidRequest, "invalid request: id must be a string or an integer");
  const bool well_formed = mcp_text(msg, "jsonrpc") == "2.0" && method_it->is_string();
  if (!well_formed)
    return has_id ? std::optional<json>(
                        mcp_error(id, kMcpInvalidRequest,
                                  "invalid request: needs \"jsonrpc\": \"2.0\" and a string method"))
                  : std::nullopt;
  const json params = msg.contains("params") ? msg["params"] : json::object();
  // A notification (notifications/initialized, notifications/cancelled, ...) is never answered.
  if (!has_id) return std::nullopt;
  if (!params.is_object()) return mcp_error(id, kMcpBadParams, "params must be a JSON object");
  McpReply r;
  try {
    r = mcp_dispatch(c, method_it->get<std::string>(), params);
  } catch (const std::exception& e) {
    std::cerr << "cp-host mcp: internal error: " << e.what() << "\n";
    r = mcp_error_reply(kMcpInternalError, std::string("internal error: ") + e.what());
  }
  if (r.code != 0) return mcp_error(id, r.code, r.message);
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(r.result)}};
}

// ---- stdio --------------------------------------------------------------------------------------------

// Lines of at most kMcpMaxLine bytes from a file descriptor. A longer line is dropped as it arrives (never
// held whole) and reported, so one huge message costs bounded memory and the next is read as usual.
class McpLineReader {
 public:
  enum class Got { line, too_long, eof };
  explicit McpLineReader(int fd) : fd_(fd) {}

  Got next(std::string& line) {
    for (;;) {
      if (auto nl = buf_.find('\n', scanned_); nl != std::string::npos) {
        const bool dropped = dropping_;
        line.assign(buf_, 0, nl);
        buf_.erase(0, nl + 1);
        scanned_ = 0;
        dropping_ = false;
        if (dropped || line.size() > kMcpMaxLine) return Got::too_long;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return Got::line;
      }
      if (buf_.size() > kMcpMaxLine) {
        dropping_ = true;
        buf_.clear();
      }
      scanned_ = buf_.size();
      if (!fill()) {
        if (buf_.empty() || dropping_) return Got::eof;
        line.swap(buf_);
        buf_.clear();
        scanned_ = 0;
        return Got::line;
      }
    }
  }

 private:
  bool fill() {
    char chunk[65536];
    for (;;) {
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
      return true;
    }
  }

  int fd_;
  std::string buf_;
  size_t scanned_ = 0;  // bytes of buf_ known to hold no newline
  bool dropping_ = false;
};

// One message, one line; false when the client is gone.
bool mcp_send(int fd, const json& msg) {
  const std::string text = msg.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The token in `file`: its first line, trimmed (as the remote commands read theirs).
std::optional<std::string> mcp_read_token(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 4096) {
    std::cerr << "cp-host mcp: token file " << file << " does not exist, is not a file or is over 4 KiB\n";
    return std::nullopt;
  }
  if (st.st_mode & (S_IRGRP | S_IROTH))
    std::cerr << "cp-host mcp: warning: token file " << file << " is readable by others (chmod 600 " << file
              << ")\n";
  std::ifstream in(file);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
  return token;
}

// With --allow-writes: the token (--token-file, else CP_HOST_TOKEN) must be one of --tokens. Its role at
// start decides which write tools are listed. -1 when serving may start, else the exit code.
int mcp_settle_writes(McpContext& c) {
  if (const char* env = std::getenv("CP_HOST_TOKEN"); env && *env && c.opts.token_file.empty()) c.token = env;
  // Nothing this process starts (plugin workers, probes) needs the token.
  ::unsetenv("CP_HOST_TOKEN");
  if (!c.opts.token_file.empty()) {
    auto token = mcp_read_token(c.opts.token_file);
    if (!token) return kUsage;
    c.token = *token;
  }
  if (!c.opts.allow_writes) return -1;
  if (c.opts.tokens_file.empty() || c.token.empty()) {
    std::cerr
        << "cp-host mcp: --allow-writes needs --tokens FILE (made with `cp-host tokens add`) and a token "
           "from it in CP_HOST_TOKEN or --token-file\n";
    return kUsage;
  }
  try {
    auto who = serve::TokenStore::load(c.opts.tokens_file).authenticate(c.token);
    if (!who) {
      std::cerr << "cp-host mcp: the token given is not in " << c.opts.tokens_file << "\n";
      return kUsage;
    }
    c.role = who->role;
    std::cerr << "cp-host mcp: writes allowed as '" << who->token_id << "' (" << serve::role_name(who->role)
              << ")\n";
  } catch (const std::exception& e) {
    std::cerr << "cp-host mcp: " << e.what() << "\n";
    return kUsage;
  }
  try {
    cp::log::open_lanes(fs::absolute(c.g.root));  // decisions and submissions leave their log lines
  } catch (const std::exception& e) {
    std::cerr << "cp-host mcp: cannot open the log lanes: " << e.what() << "\n";
  }
  return -1;
}

int mcp_serve(const Globals& g, McpOptions opts) {
  McpContext c{g, std::move(opts), {}, {}, serve::Role::none, nullptr, false};
  std::error_code ec;
  c.root_real = fs::canonical(g.root, ec);
  if (ec || !fs::is_directory(c.root_real)) {
    std::cerr << "cp-host mcp: the project root " << g.root.string() << " is not a folder\n";
    return kUsage;
  }
  if (int bad = mcp_settle_writes(c); bad >= 0) return bad;
  (void)mcp_tools();  // the schemas compile now, not in the first request
  // The protocol keeps stdout for itself: fd 1 becomes stderr, so nothing else can write into the stream.
  std::cout.flush();
  const int out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::cerr << "cp-host mcp: cannot take stdout: " << std::strerror(errno) << "\n";
    return kInternal;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not a killed server
  std::cerr << "cp-host mcp: serving MCP on stdin/stdout (root " << c.root_real.string() << ", writes "
            << (c.opts.allow_writes ? "allowed" : "off") << ")\n";
  McpLineReader in(STDIN_FILENO);
  std::string line;
  for (;;) {
    const auto got = in.next(line);
    if (got == McpLineReader::Got::eof) break;
    std::optional<json> reply;
    if (got == McpLineReader::Got::too_long)
      reply = mcp_error(nullptr, kMcpParseError,
                        "a message over " + std::to_string(kMcpMaxLine >> 20) + " MiB was dropped unread");
    else if (!line.empty())
      reply = mcp_respond(c, line);
    if (reply && !mcp_send(out, *reply)) break;
  }
  ::close(out);
  return kOk;
}

}  // namespace

void add_mcp(CLI::App& app, Globals& g, Runner& run) {
  auto o = std::make_shared<McpOptions>();
  auto* cmd = app.add_subcommand(
      "mcp",
      "Serve the Model Context Protocol on stdin/stdout (JSON-RPC, one message per line) for agents such as "
      "Codex and Claude Code: read runs, events, diffs, the queue, approvals and workflows, validate "
      "contracts; with --allow-writes and an operator or admin token, submit, cancel, approve and reject. "
      "Logs go to stderr. See docs/mcp.md");
  cmd->add_flag("--allow-writes", o->allow_writes,
                "Offer submit_contract, cancel_queue_item, approve_run and reject_run (needs --tokens and an "
                "operator or admin token)");
  cmd->add_option("--token-file", o->token_file,
                  "A file holding the token writes are checked with (default: $CP_HOST_TOKEN)");
  cmd->add_option("--tokens", o->tokens_file,
                  "The token file (`cp-host tokens add`, as serve --tokens) the token must be in");
  cmd->add_option("--repo", o->repo, "The repository a submission runs on when it names none (default: .)");
  cmd->add_option("--allow-repo", o->allow_repos,
                  "A repository (or a folder of them) a submission may name (repeatable)");
  cmd->callback([&app, &g, &run, o] {
    // `cp-host --token-file F mcp` gives the option before the command word: the global option holds it.
    if (o->token_file.empty())
      if (const CLI::Option* global = app.get_option_no_throw("--token-file"); global && global->count() > 0)
        o->token_file = global->as<std::string>();
    run = [&g, o] { return mcp_serve(g, *o); };
  });
}

}  // namespace cp::cli
