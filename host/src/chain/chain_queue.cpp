#include "chain/chain_queue.hpp"
#include "core/json_text.hpp"

#include "chain/chain_bundle.hpp"
#include "chain/chain_progress.hpp"
#include "chain/chain_record.hpp"
#include "chain/chain_spec.hpp"
#include "chain/chain_view.hpp"
#include "contract/compiler.hpp"
#include "control/approvals.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "core/schema_catalog.hpp"
#include "log/log_lanes.hpp"
#include "queue/queue_backend.hpp"
#include "queue/queue_service.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/host_events.hpp"
#include "store/run_index.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

QueuedChainResult refused_chain(QueuedChainResult::Outcome o, std::string error,
                                std::vector<contract::Diagnostic> diagnostics = {}) {
  QueuedChainResult r;
  r.outcome = o;
  r.error = std::move(error);
  r.diagnostics = std::move(diagnostics);
  return r;
}

// Removes a folder on every path out of submit_queued_chain() that does not keep it.
struct FolderGuard {
  fs::path dir;
  ~FolderGuard() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

// The queue of `root` as it is now; an empty snapshot when it was never written.
std::shared_ptr<const queue::Snapshot> queue_now(const fs::path& root) {
  queue::BackendOptions o;
  o.root = root;
  o.create = false;
  auto backend = queue::open_queue_backend(o);
  if (!backend) return std::make_shared<queue::Snapshot>();
  return backend->list();
}

// A step's run as its own manifest says now, or what the queue knows of it.
json run_entry(const fs::path& root, const ItemProgress& ip) {
  json r{{"run_id", ip.run_id.empty() ? json(nullptr) : json(ip.run_id)}, {"item_id", ip.item_id}};
  r["queue_state"] = ip.state;
  if (ip.item) r["attempts"] = ip.item->attempts.size();
  if (!ip.started_at.empty()) r["started_at"] = ip.started_at;
  if (!ip.finished_at.empty()) r["finished_at"] = ip.finished_at;
  r["finished"] = ip.settled && !ip.run_id.empty();
  if (ip.settled && !ip.status.empty()) r["step_verdict"] = ip.status;
  if (ip.awaiting) r["awaiting_approval"] = true;
  std::optional<store::RunSummary> s;
  if (!ip.run_id.empty())
    if (auto dir = store::find_run(root, ip.run_id)) s = store::read_run_summary(*dir, ip.run_id);
  if (!s) {
    r["status"] = ip.run_id.empty() ? "not_started" : ip.item && ip.item->active() ? "starting" : "not_found";
    return r;
  }
  add_run_summary(r, *s);
  return r;
}

// The commit a task step's run put on the chain branch, or empty.
std::string carried_commit(const fs::path& root, const std::string& run_id, const std::string& branch) {
  if (run_id.empty()) return "";
  json m = core::read_json_file(core::runs_dir(root) / run_id / "manifest.json");
  if (!m.is_object() || !m.contains("evidence") || !m["evidence"].is_object()) return "";
  const json& ev = m["evidence"];
  return core::text_of(ev, "decision") == "promoted" && core::text_of(ev, "branch") == branch
             ? core::text_of(ev, "commit")
             : "";
}

// The chain's state: queued, running, awaiting_approval, ending, done or cancelled.
std::string chain_state(const ChainProgress& prog, const queue::QueueItem* own, bool sealed) {
  const bool cancelled = prog.cancel_requested || (own && own->state == queue::ItemState::cancelled);
  if (sealed) return cancelled ? "cancelled" : "done";
  if (own && own->state == queue::ItemState::cancelled) return "cancelled";
  if (cancelled || !prog.ending.is_null() || (own && own->active())) return "ending";
  bool running = false, awaiting = false;
  for (const auto& sp : prog.steps) {
    running = running || sp.state == "running";
    awaiting = awaiting || sp.state == "awaiting_approval";
  }
  if (running) return "running";
  if (awaiting) return "awaiting_approval";
  return prog.started ? "running" : "queued";
}

// The view of a chain that is queued or running (or sealed: chain_view then adds what its bundle says).
json build_view(const fs::path& root, const json& rec, const queue::QueueState& st) {
  const std::string id = rec["run_id"];
  const json cancel = read_chain_cancel(root, id);
  ChainProgress prog = progress_of(rec, cancel, st);
  const queue::QueueItem* own = st.find(id);
  const std::string branch = rec["branch"];
  queue::Limits limits;
  limits.global = 1 << 20;  // what a step waits for, not the server's concurrency (serve decides that)
  const queue::Occupancy occ = queue::occupancy(st);
  const int64_t now = core::now_ms();

  // What a step waits for, with the chain's item ids named by their steps.
  std::map<std::string, std::string> step_of_item_id;
  for (const auto& sp : prog.steps)
    for (const auto& ip : sp.items) step_of_item_id[ip.item_id] = sp.step_id;
  auto name_items = [&](std::string text) {
    for (const auto& [item, step] : step_of_item_id) {
      const std::string needle = "item " + item;
      if (auto at = text.find(needle); at != std::string::npos)
        text.replace(at, needle.size(), "step " + step + " (item " + item + ")");
    }
    return text;
  };

  json steps = json::array(), handoffs = json::array(), votes = json::array();
  json previous_handoff;
  std::string previous_run;
  int done = 0;
  for (const auto& sp : prog.steps) {
    const json& s = rec["steps"][sp.index];
    json step{{"step_id", sp.step_id}, {"kind", sp.kind}, {"role", sp.role}, {"state", sp.state}};
    if (sp.kind == "handoff") {
      json h = s.value("handoff", json::object());
      h["step_id"] = sp.step_id;
      h["previous_run_id"] = sp.state == "done" && !previous_run.empty() ? json(previous_run) : json(nullptr);
      h["contract_rewritten"] = false;
      step["role"] = h.value("to_role", sp.role);
      step["handoff"] = h;
      if (sp.state == "done") handoffs.push_back(h);
      previous_handoff = h;
      steps.push_back(step);
      continue;
    }
    step["handoff_in"] = previous_handoff.is_null() ? json(nullptr) : previous_handoff;
    previous_handoff = nullptr;
    json runs = json::array(), item_ids = json::array();
    std::string waiting_on, last_run;
    for (size_t j = 0; j < sp.items.size(); ++j) {
      const ItemProgress& ip = sp.items[j];
      item_ids.push_back(ip.item_id);
      json r = run_entry(root, ip);
      if (sp.kind == "review") {
        r["reviewer"] = j + 1;
        if (ip.settled && !ip.run_id.empty()) {
          r["approve"] = ip.status == "success";
          votes.push_back({{"step_id", sp.step_id},
                           {"reviewer", j + 1},
                           {"run_id", ip.run_id},
                           {"verdict", ip.status},
                           {"approve", ip.status == "success"}});
        }
      }
      if (!ip.run_id.empty()) last_run = ip.run_id;
      if (ip.item && ip.item->state == queue::ItemState::queued && waiting_on.empty()) {
        queue::Derived d = queue::derive(*ip.item, st, limits, occ, now);
        if (!d.eligible) waiting_on = name_items(d.why_not);
      }
      if (!ip.run_id.empty() || (ip.item && ip.item->active())) runs.push_back(r);
    }
    step["item_ids"] = item_ids;
    step["item_id"] = sp.kind == "task" && !item_ids.empty() ? item_ids[0] : json(nullptr);
    step["run_id"] = last_run.empty() ? json(nullptr) : json(last_run);
    step["runs"] = runs;
    step["depends_on"] = s["depends_on"];
    step["ordered_after"] = s.value("ordered_after", json::array());
    step["parallel_group"] = s.contains("parallel_group") ? s["parallel_group"] : json(nullptr);
    step["continue_on_fail"] = s.value("continue_on_fail", false);
    step["exclusive_paths"] = s.value("exclusive_paths", json::array());
    step["lock_paths"] = s.value("lock_paths", json::array());
    bool approval = false;
    for (const auto& a : s.value("requires_approval", json::array())) approval = approval || a.get<bool>();
    step["requires_approval"] = approval;
    step["started_at"] = sp.started_at.empty() ? json(nullptr) : json(sp.started_at);
    step["finished_at"] = sp.settled && !sp.finished_at.empty() ? json(sp.finished_at) : json(nullptr);
    if (!waiting_on.empty()) step["waiting_on"] = waiting_on;
    if (sp.settled && sp.state != "not_run" && sp.state != "cancelled") {
      step["verdict"] = sp.verdict;
      step["reason"] = sp.reason;
      ++done;
    }
    if (sp.kind == "task") {
      std::string commit = carried_commit(root, last_run, branch);
      if (!commit.empty()) step["commit"] = commit;
    }
    if (sp.kind == "review") {
      const int quorum = s.value("quorum", static_cast<int>(sp.items.size()));
      json q{{"required", quorum}, {"reviewers", sp.items.size()}, {"approvals", sp.approvals}};
      if (sp.settled) q["met"] = sp.approvals >= quorum;
      step["quorum"] = q;
    } else {
      step["quorum"] = nullptr;
    }
    if (!last_run.empty()) previous_run = last_run;
    steps.push_back(step);
  }

  const bool sealed = false;
  json v{{"run_id", id},
         {"chain_id", rec["chain_id"]},
         {"title", rec.contains("title") ? rec["title"] : json(nullptr)},
         {"workflow_id", rec.contains("workflow_id") ? rec["workflow_id"] : json(nullptr)},
         {"state", chain_state(prog, own, sealed)},
         {"verdict", nullptr},
         {"reason", nullptr},
         {"created_at", rec["created_at"]},
         {"started_at", nullptr},
         {"finished_at", nullptr},
         {"repo", rec["repo"]},
         {"baseline_commit", rec["baseline_commit"]},
         {"branch", branch},
         {"result", nullptr},
         {"lifecycle", nullptr},
         {"steps", steps},
         {"handoffs", handoffs},
         {"votes", votes},
         {"events_complete", true},
         {"queued", true},
         {"item_id", id},
         {"origin", rec.value("origin", "")},
         {"submitted_by", rec.value("submitted_by", "")},
         {"steps_total", rec["steps"].size()},
         {"steps_done", done}};
  std::string state = v["state"];
  v["status"] = state == "queued" ? "queued" : state == "awaiting_approval" ? "awaiting_approval" : "running";
  std::string first;
  for (const auto& sp : prog.steps)
    if (!sp.started_at.empty() && (first.empty() || sp.started_at < first)) first = sp.started_at;
  if (!first.empty()) v["started_at"] = first;
  if (!prog.ending.is_null()) v["ending"] = prog.ending;
  if (cancel.is_object()) v["cancel"] = cancel;
  if (own) v["chain_item"] = {{"state", queue::to_string(own->state)}};
  return v;
}

// A sealed queued chain: its bundle's view (chain_view), with what the queue adds to each step.
json sealed_view(json bundle_view, const json& queued) {
  std::map<std::string, const json*> by_step;
  for (const auto& s : queued["steps"]) by_step[s["step_id"].get<std::string>()] = &s;
  for (auto& s : bundle_view["steps"]) {
    auto q = by_step.find(core::text_of(s, "step_id"));
    if (q == by_step.end()) continue;
    for (const char* k : {"item_id", "item_ids", "run_id", "depends_on", "ordered_after", "parallel_group",
                          "continue_on_fail", "exclusive_paths", "lock_paths", "requires_approval",
                          "started_at", "finished_at"})
      if (q->second->contains(k) && !s.contains(k)) s[k] = (*q->second)[k];
  }
  for (const char* k : {"handoffs", "votes", "queued", "item_id", "origin", "submitted_by", "steps_total",
                        "steps_done", "cancel"})
    if (queued.contains(k)) bundle_view[k] = queued[k];
  const bool cancelled = queued.contains("cancel") || core::text_of(bundle_view, "verdict") == "cancelled";
  bundle_view["state"] = cancelled ? "cancelled" : "done";
  return bundle_view;
}

}  // namespace

QueuedChainResult submit_queued_chain(const QueuedChainRequest& req) {
  using O = QueuedChainResult::Outcome;
  if (req.priority < queue::QueueService::kMinPriority || req.priority > queue::QueueService::kMaxPriority)
    return refused_chain(O::invalid, "priority must be 0..9");
  if (req.origin.size() > 500) return refused_chain(O::invalid, "origin is longer than 500 characters");
  // A chain's record (its contracts, its branch) lives under the root of the node it was submitted to, and
  // a step may run on any node of a shared queue: refused rather than failing on another node.
  if (queue::configured_store().kind != "jsonl")
    return refused_chain(O::conflict,
                         "chains cannot be queued on a shared (PostgreSQL) store yet: queue them on a node "
                         "with the JSONL store, or run one here with `cp-host chain run`");
  std::error_code ec;
  fs::path repo = fs::weakly_canonical(fs::absolute(req.repo.empty() ? fs::path(".") : req.repo), ec);
  if (ec || !fs::is_directory(repo))
    return refused_chain(O::invalid, "repo " + req.repo.string() + " is not a folder");
  std::string baseline;
  try {
    baseline = run::Workspace::resolve(repo, "HEAD");
  } catch (const std::exception& e) {
    return refused_chain(O::invalid, "repo " + repo.string() + " cannot be run on: " + e.what() +
                                         " (name a git repository with a commit)");
  }

  // Named first: the contracts are copied into the chain's own folder, made aside and moved in whole.
  const std::string doc_id =
      req.chain.is_object() && req.chain.contains("chain_id") && req.chain["chain_id"].is_string()
          ? req.chain["chain_id"].get<std::string>()
          : std::string("chain");
  const std::string run_id = store::new_run_id(store::valid_run_id(doc_id) ? doc_id : "chain");
  const fs::path incoming = core::queue_chains_dir(req.root) / ".incoming" / run_id;
  const fs::path final_dir = chain_record_dir(req.root, run_id);
  FolderGuard guard{incoming};
  ChainSource src;
  src.display = req.source;
  src.text = req.source_text;
  src.pointer_prefix = req.pointer_prefix;
  src.base_dir = req.base_dir;
  src.confine_paths = req.confine_paths;
  src.staging = incoming / "contracts";
  src.stage_all = true;
  LoadResult loaded;
  try {
    loaded = load_chain_document(req.chain, src, req.root, req.plugins_dir, req.registry);
  } catch (const std::exception& e) {
    return refused_chain(O::invalid, std::string("the chain cannot be read: ") + e.what());
  }
  if (!loaded.ok) return refused_chain(O::invalid, loaded.error, loaded.diagnostics);
  const ChainSpec& spec = loaded.spec;

  // One item per task step and per reviewer; the chain's own item after them, waiting for all.
  std::vector<queue::NewItem> items;
  std::map<std::string, std::vector<std::string>> items_of;  // step id -> its item ids
  json rec_steps = json::array();
  for (const Step& st : spec.steps) {
    json rs{{"step_id", st.id},
            {"kind", st.kind},
            {"role", st.kind == "handoff" ? st.handoff.value("to_role", "") : st.role},
            {"items", json::array()},
            {"depends_on", st.depends_on}};
    if (st.kind == "handoff") {
      rs["handoff"] = st.handoff;
      rec_steps.push_back(rs);
      continue;
    }
    rs["contracts"] = json::array();
    rs["requires_approval"] = json::array();
    if (!st.ordered_after.empty()) rs["ordered_after"] = st.ordered_after;
    if (!st.parallel_group.empty()) rs["parallel_group"] = st.parallel_group;
    if (st.continue_on_fail) rs["continue_on_fail"] = true;
    if (!st.exclusive_paths.empty()) rs["exclusive_paths"] = st.exclusive_paths;
    rs["lock_paths"] = st.lock_paths;
    if (st.kind == "review") rs["quorum"] = st.quorum;
    for (size_t j = 0; j < st.contract_docs.size(); ++j) {
      const json& doc = st.contract_docs[j];
      json compiled;
      queue::NewItem item;
      try {
        compiled = contract::compile_contract(doc, req.root).document;
        item = queue::QueueService::item_from_compiled(compiled, req.priority);
      } catch (const std::exception& e) {
        return refused_chain(O::invalid, "step " + st.id + ": " + e.what());
      }
      item.item_id = queue::new_item_id();
      const std::string rel = "contracts/" + st.contracts[j].filename().string();
      item.contract_path = (final_dir / rel).string();
      item.repo = repo.string();
      item.submitted_by = req.submitted_by;
      item.parent = run_id;
      // A reviewer's vote against is a vote, not a failure of the chain: the quorum decides.
      item.allow_failure = st.continue_on_fail || st.kind == "review";
      // Its own paths and the step's exclusive ones.
      std::set<std::string> locks(item.lock_paths.begin(), item.lock_paths.end());
      for (const auto& e : st.exclusive_paths)
        if (auto n = queue::normalise_lock_path(e)) locks.insert(*n);
      item.lock_paths.assign(locks.begin(), locks.end());
      if (item.workflow_id.empty()) item.workflow_id = spec.workflow_id;
      rs["items"].push_back(item.item_id);
      rs["contracts"].push_back(rel);
      rs["requires_approval"].push_back(compiled["pack"].value("requires_approval", false));
      items_of[st.id].push_back(item.item_id);
      items.push_back(std::move(item));
    }
    rec_steps.push_back(rs);
  }
  // Dependencies by item: a step's items wait for every item of each step it depends on.
  {
    size_t k = 0;
    for (const Step& st : spec.steps) {
      if (st.kind == "handoff") continue;
      std::vector<std::string> deps;
      for (const auto& d : st.depends_on)
        for (const auto& id : items_of[d]) deps.push_back(id);
      for (size_t j = 0; j < st.contract_docs.size(); ++j) items[k++].depends_on = deps;
    }
  }
  queue::NewItem own;
  own.item_id = run_id;
  own.kind = kChainItemKind;
  own.when = "always";
  own.task_id = spec.chain_id;
  own.contract_path = (final_dir / "chain.json").string();
  own.repo = repo.string();
  own.priority = req.priority;
  own.submitted_by = req.submitted_by;
  own.workflow_id = spec.workflow_id;
  own.max_retries = 2;  // sealing cut short by a crash is done again
  for (const auto& it : items) own.depends_on.push_back(it.item_id);
  items.push_back(own);

  json rec{{"schema_version", 1},
           {"kind", "queued_chain"},
           {"run_id", run_id},
           {"chain_id", spec.chain_id},
           {"repo", repo.string()},
           {"baseline_commit", baseline},
           {"branch", chain_branch(run_id)},
           {"submitted_by", req.submitted_by},
           {"origin", req.origin},
           {"created_at", core::now_utc_iso()},
           {"require_pm_loop", spec.require_pm_loop},
           {"priority", req.priority},
           {"document", spec.doc},
           {"steps", rec_steps}};
  if (spec.doc.contains("title") && spec.doc["title"].is_string()) rec["title"] = spec.doc["title"];
  if (!spec.workflow_id.empty()) rec["workflow_id"] = spec.workflow_id;
  if (auto v = core::schema("queued_chain").validate(rec); !v.empty())
    return refused_chain(
        O::invalid, "the chain's record does not fit its schema at " + v[0].pointer + ": " + v[0].message);
  try {
    store::write_json_atomic(incoming / "chain.json", rec);
    fs::create_directories(final_dir.parent_path());
    fs::rename(incoming, final_dir);
  } catch (const std::exception& e) {
    return refused_chain(O::conflict, std::string("cannot keep the chain: ") + e.what());
  }
  guard.dir = final_dir;  // until the queue holds it

  queue::BatchOutcome b;
  try {
    queue::BackendOptions o;
    o.root = req.root;
    b = queue::open_queue_backend(o)->submit_all(items);
  } catch (const std::exception& e) {
    return refused_chain(O::conflict, std::string("the queue refused the chain: ") + e.what());
  }
  if (b.kind != queue::SubmitOutcome::Kind::queued)
    return refused_chain(O::conflict, b.kind == queue::SubmitOutcome::Kind::duplicate
                                          ? "queue item " + b.item_id + " exists already"
                                          : "item " + b.item_id + " depends on " + b.missing +
                                                ", which the queue does not hold");
  guard.dir.clear();
  try {
    store::record_host_event(req.root, "CHAIN_QUEUED",
                             {{"run_id", run_id},
                              {"chain_id", spec.chain_id},
                              {"repo", repo.string()},
                              {"items", items.size()},
                              {"by", req.submitted_by},
                              {"origin", req.origin}});
  } catch (const std::exception& e) {
    // The chain is queued; only its record in the host log failed. Say so where the operator looks.
    log::governance("host", "chains", std::string("chain queued but not recorded: ") + e.what(),
                    {{"run_id", run_id}}, true);
  }
  log::governance(run_id, "chains", "chain " + spec.chain_id + " queued by " + req.submitted_by,
                  {{"items", items.size()}, {"origin", req.origin}});
  QueuedChainResult r;
  r.outcome = O::queued;
  r.chain_id = run_id;
  r.view = queued_chain_view(req.root, run_id).value_or(json());
  return r;
}

std::optional<json> queued_chain_view(const fs::path& root, const std::string& chain_id) {
  auto rec = read_chain_record(root, chain_id);
  if (!rec) return std::nullopt;
  auto snap = queue_now(root);
  json v = build_view(root, *rec, snap->state);
  if (auto dir = store::find_run(root, chain_id)) {
    ChainView cv = chain_view(root, chain_id);
    if (cv.outcome == ChainView::Outcome::ok && core::text_of(cv.view, "status") == "sealed")
      return sealed_view(cv.view, v);
  }
  return v;
}

std::vector<json> list_queued_chains(const fs::path& root) {
  std::vector<json> out;
  std::error_code ec;
  std::shared_ptr<const queue::Snapshot> snap;
  for (const auto& e : fs::directory_iterator(core::queue_chains_dir(root), ec)) {
    const std::string id = e.path().filename().string();
    if (id.empty() || id[0] == '.') continue;
    auto bundle = store::find_run(root, id);
    if (bundle) {
      json m = core::read_json_file(*bundle / "manifest.json");
      if (m.is_object() && core::text_of(m, "status") == "sealed") continue;  // the catalogue lists it
    }
    auto rec = read_chain_record(root, id);
    if (!rec) continue;
    if (!snap) snap = queue_now(root);
    // A record the queue never took (its submission died in between) is no chain: nothing will run it,
    // and serve's start sweeps it.
    if (!bundle && !snap->state.find(id)) continue;
    json v = build_view(root, *rec, snap->state);
    out.push_back({{"run_id", id},
                   {"chain_id", v["chain_id"]},
                   {"task_id", v["chain_id"]},
                   {"kind", "chain"},
                   {"title", v["title"]},
                   {"workflow_id", v["workflow_id"]},
                   {"status", v["status"]},
                   {"state", v["state"]},
                   {"verdict", nullptr},
                   {"created_at", v["created_at"]},
                   {"started_at", v["started_at"]},
                   {"repo", v["repo"]},
                   {"origin", v["origin"]},
                   {"submitted_by", v["submitted_by"]},
                   {"steps_total", v["steps_total"]},
                   {"steps_done", v["steps_done"]},
                   {"queued", true}});
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return a["created_at"].get<std::string>() != b["created_at"].get<std::string>()
               ? a["created_at"].get<std::string>() > b["created_at"].get<std::string>()
               : a["run_id"].get<std::string>() > b["run_id"].get<std::string>();
  });
  return out;
}

CancelChainResult cancel_queued_chain(const fs::path& root, const std::string& chain_id,
                                      const control::Actor& by, const std::string& reason) {
  using O = CancelChainResult::Outcome;
  CancelChainResult r;
  auto rec = read_chain_record(root, chain_id);
  if (!rec) {
    r.message = "no queued chain " + chain_id;
    return r;
  }
  queue::BackendOptions o;
  o.root = root;
  auto q = queue::open_queue_backend(o);
  auto snap = q->list();
  const queue::QueueItem* own = snap->state.find(chain_id);
  if (store::find_run(root, chain_id) || !own || own->terminal() || own->active()) {
    r.outcome = O::already_ended;
    r.message = "chain " + chain_id + " has already ended" +
                (own && own->active() ? " (it is being sealed)" : "") + "; there is nothing to cancel";
    r.view = queued_chain_view(root, chain_id).value_or(json());
    return r;
  }
  // Written first: from here on everything that reads the chain knows it was cancelled, and the steps that
  // are stopped or never start are the chain's doing, not failures of their own.
  if (!read_chain_cancel(root, chain_id).is_object())
    store::write_json_atomic(chain_record_dir(root, chain_id) / "cancel.json",
                             {{"schema_version", 1},
                              {"kind", "queued_chain_cancel"},
                              {"run_id", chain_id},
                              {"by", by.by},
                              {"by_kind", by.by_kind},
                              {"at", core::now_utc_iso()},
                              {"reason", reason.substr(0, 1000)}});
  const std::string why =
      std::string(kChainCancelledReason) + " by " + by.by + (reason.empty() ? "" : ": " + reason);
  ChainProgress prog = progress_of(*rec, read_chain_cancel(root, chain_id), snap->state);
  for (const auto& sp : prog.steps)
    for (const auto& ip : sp.items) {
      if (!ip.item) continue;
      if (ip.awaiting) {
        control::decide(root, ip.run_id, control::Decision::reject, control::rule(why));
        if (q->settle(ip.item_id, "cancelled", why, by.by) == queue::Change::applied) ++r.rejected;
        continue;
      }
      if (ip.item->terminal()) continue;
      auto c = q->cancel(ip.item_id, by.by, why);
      if (c == queue::CancelOutcome::cancelled) ++r.cancelled;
      if (c == queue::CancelOutcome::requested) ++r.stopping;
    }
  json payload{{"run_id", chain_id},
               {"chain_id", (*rec)["chain_id"]},
               {"by", by.by},
               {"by_kind", by.by_kind},
               {"reason", reason},
               {"cancelled", r.cancelled},
               {"stopping", r.stopping},
               {"rejected", r.rejected}};
  store::record_host_event(root, "CHAIN_CANCELLED", payload);
  log::governance(chain_id, "chains", "chain cancelled by " + by.by + (reason.empty() ? "" : ": " + reason),
                  payload);
  r.outcome = O::cancelled;
  r.message = "chain " + chain_id + " cancelled: " + std::to_string(r.cancelled) +
              " step item(s) will not start, " + std::to_string(r.stopping) +
              " running one(s) are being stopped, " + std::to_string(r.rejected) +
              " waiting approval(s) denied";
  r.view = queued_chain_view(root, chain_id).value_or(json());
  return r;
}

}  // namespace cp::chain
