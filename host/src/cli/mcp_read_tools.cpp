// `cp-host mcp`'s read tools, always served: runs, a run's events and diff, the queue, approvals, workflows,
// and the check of a contract. Each calls what the matching CLI command calls and answers that command's
// --json shape (docs/mcp.md). They never repair anything: a run a crash left unsealed shows as it is.
#include "chain/chain_spec.hpp"
#include "cli/mcp_tools.hpp"
#include "cli/shared_answers.hpp"
#include "contract/validation.hpp"
#include "control/approvals.hpp"
#include "control/patch_view.hpp"
#include "control/run_views.hpp"
#include "control/workflow_cases.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "queue/queue_service.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/host_key.hpp"
#include "store/run_index.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ext/stdio_filebuf.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <system_error>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A diff shown to a model: the API's shape, with tighter bounds (the counts still cover the whole patch).
constexpr control::PatchLimits kMcpPatchLimits{1000, 4000, 20000};
constexpr size_t kMcpDefaultEvents = 500, kMcpMaxEvents = 5000;

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
    return mcp_ok(validation_report_json(contract::validate(vo)));
  }
  McpScratch scratch;
  const fs::path file = scratch.write(a["contract"]);
  vo.paths = {file};
  vo.forced_schema = "task_contract";
  contract::ValidationReport report = contract::validate(vo);
  for (auto& d : report.diagnostics)
    if (fs::path(d.file).filename() == file.filename()) d.file = "(inline contract)";
  return mcp_ok(validation_report_json(report));
}

}  // namespace

std::vector<McpTool> mcp_read_tools() {
  using serve::Role;
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
  return t;
}

}  // namespace cp::cli
