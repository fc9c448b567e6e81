#include "queue/queue_service.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"

#include "contract/compiler.hpp"
#include "core/json_locator.hpp"
#include "run/runner_driver.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"

#include <filesystem>
#include <system_error>

namespace cp::queue {

namespace fs = std::filesystem;
using nlohmann::json;

QueueService::QueueService(fs::path root, const plugin::Registry* registry)
    : root_(std::move(root)), registry_(registry), backend_(open_queue_backend({root_})) {}

QueueService::~QueueService() = default;

Limits QueueService::limits(int global) const {
  Limits l;
  l.global = global;
  std::error_code ec;
  auto mtime = fs::last_write_time(root_ / "packs", ec);
  std::lock_guard<std::mutex> g(limits_mu_);
  if (!limits_read_ || mtime != packs_mtime_) {
    per_pack_.clear();
    for (const auto& e : fs::directory_iterator(root_ / "packs", ec)) {
      if (e.path().extension() != ".json") continue;
      json p = core::read_json_file(e.path());
      if (p.is_object() && p.contains("concurrency_limit") && p["concurrency_limit"].is_number_integer())
        per_pack_[p.value("pack_id", e.path().stem().string())] = p["concurrency_limit"].get<int>();
    }
    packs_mtime_ = mtime;
    limits_read_ = true;
  }
  l.per_pack = per_pack_;
  return l;
}

namespace {

bool valid_time(const std::string& s) {
  return s.empty() || parse_iso_ms(s) >= 0;
}

}  // namespace

SubmitResult QueueService::submit(const SubmitRequest& req) {
  SubmitResult r;
  auto usage = [&](const std::string& m) {
    r.outcome = SubmitResult::Outcome::invalid;
    r.error = m;
    return r;
  };
  if (!req.contract.is_object()) return usage("the contract must be a JSON object");
  for (const auto* t : {&req.run_after, &req.deadline, &req.start_by})
    if (!valid_time(*t))
      return usage("'" + *t + "' is not an ISO-8601 UTC time such as 2026-11-25T10:00:00Z");
  if (req.priority && (*req.priority < 0 || *req.priority > 9)) return usage("priority must be 0..9");
  std::error_code ec;
  fs::path repo = fs::weakly_canonical(fs::absolute(req.repo.empty() ? fs::path(".") : req.repo), ec);
  if (ec || !fs::is_directory(repo)) return usage("repo " + req.repo.string() + " is not a folder");

  // The contract is kept as submitted, in a file of its own: the item runs what was checked, whatever
  // happens to the submitter's copy. It is validated in place, with the same checks as `cp-host validate`.
  const std::string item_id = new_item_id();
  fs::path snap_dir = core::queue_contracts_dir(root_);
  fs::create_directories(snap_dir);
  fs::path snap = snap_dir / (item_id + ".json");
  store::write_json_atomic(snap, req.contract);
  contract::ValidateOptions vo;
  vo.paths = {snap};
  vo.root = root_;
  vo.forced_schema = "task_contract";
  vo.registry = registry_;
  vo.check_plugins = registry_ != nullptr;
  vo.jobs = 1;
  contract::ValidationReport rep = contract::validate(vo);
  if (!rep.ok()) {
    fs::remove(snap, ec);
    r.outcome = SubmitResult::Outcome::invalid;
    r.diagnostics = rep.diagnostics;
    // Diagnostics of the kept copy are the submitter's file's; others (the contract's pack) keep their file.
    for (auto& d : r.diagnostics) {
      if (fs::path(d.file).filename() != snap.filename()) continue;
      d.file = req.source;
      if (!req.source_text.empty()) d.line = core::line_of_pointer(req.source_text, d.pointer);
    }
    r.error = "the contract is not valid";
    return r;
  }
  json compiled;
  try {
    compiled = contract::compile_contract(req.contract, root_).document;
  } catch (const std::exception& e) {
    fs::remove(snap, ec);
    return usage(e.what());
  }
  const json& c = compiled["contract"];
  // The run would refuse a folder that is not a git repository, or a baseline it cannot resolve, only when
  // the scheduler starts it: refused here, the submitter hears it and nothing is queued.
  try {
    (void)run::Workspace::resolve(repo, c.value("rollback", json::object()).value("baseline_ref", "HEAD"));
  } catch (const std::exception& e) {
    fs::remove(snap, ec);
    return usage("repo " + repo.string() + " cannot be run on: " + e.what() +
                 " (name a git repository, or fix /rollback/baseline_ref)");
  }
  NewItem item;
  try {
    item = item_from_compiled(compiled, req.priority);
  } catch (const std::exception& e) {
    fs::remove(snap, ec);
    return usage(e.what());
  }
  item.item_id = item_id;
  item.contract_path = snap.string();
  item.repo = repo.string();
  item.depends_on = req.depends_on;
  item.run_after = req.run_after;
  item.deadline = req.deadline;
  item.start_by = req.start_by;
  item.submitted_by = req.submitted_by;

  r = record(item);
  if (r.outcome != SubmitResult::Outcome::queued) fs::remove(snap, ec);
  return r;
}

NewItem QueueService::item_from_compiled(const json& compiled, std::optional<int> priority) {
  const json& c = compiled["contract"];
  const json tr = c.value("timeout_retry", json::object());
  NewItem item;
  item.task_id = c.value("task_id", "");
  item.pack = compiled["pack"].value("pack_id", "");
  item.priority = priority.value_or(c.value("runtime_options", json::object()).value("priority", 5));
  item.max_retries = tr.value("max_retries", 0);
  item.backoff_sec = tr.value("backoff_sec", 0.0);
  item.timeout_sec = tr.value("timeout_sec", 0);
  item.workflow_id = c.value("workflow_id", "");
  // What a claim of the item locks: the contract's allowed_paths (the whole repository without any), for
  // the run's wall-time budget plus room for its gates, unless the scheduler renews them.
  item.lock_paths = lock_paths_of(c.value("allowed_paths", json::array()));
  item.lock_ttl_sec = static_cast<int>(run::wall_time_of(c).count()) + kLockTtlMarginSec;
  return item;
}

SubmitResult QueueService::submit_item(const NewItem& item) {
  SubmitResult r;
  for (const auto* t : {&item.run_after, &item.deadline, &item.start_by})
    if (!valid_time(*t)) {
      r.error = "'" + *t + "' is not an ISO-8601 UTC time such as 2026-11-25T10:00:00Z";
      return r;
    }
  if (item.priority < 0 || item.priority > 9) {
    r.error = "priority must be 0..9";
    return r;
  }
  return record(item);
}

SubmitResult QueueService::record(const NewItem& item) {
  SubmitResult r;
  SubmitOutcome sub = backend_->submit(item);
  if (sub.kind != SubmitOutcome::Kind::queued) {
    r.outcome = SubmitResult::Outcome::conflict;
    r.error = sub.kind == SubmitOutcome::Kind::missing_dependency
                  ? "depends_on names item " + sub.missing + ", which is not in the queue"
                  : "item " + item.item_id + " is in the queue already";
    return r;
  }
  auto snapshot = backend_->list();
  const QueueState& st = snapshot->state;
  const QueueItem* it = st.find(item.item_id);
  if (!it) it = &sub.item;  // gone again already (cancelled and compacted by another process)
  r.item = to_json(*it, derive(*it, st, limits(global_), occupancy(st), now_ms()));
  r.outcome = SubmitResult::Outcome::queued;
  return r;
}

CancelOutcome QueueService::cancel(const std::string& item_id, const std::string& by,
                                   const std::string& reason) {
  return backend_->cancel(item_id, by, reason);
}

Change QueueService::set_priority(const std::string& item_id, int priority, const std::string& by) {
  if (priority < kMinPriority || priority > kMaxPriority)
    throw std::invalid_argument("priority " + std::to_string(priority) + " is outside " +
                                std::to_string(kMinPriority) + ".." + std::to_string(kMaxPriority));
  return backend_->set_priority(item_id, priority, by);
}

json QueueService::list(const ListFilter& f) {
  auto snapshot = backend_->list();
  const QueueState& st = snapshot->state;
  Limits lim = limits(global_);
  Occupancy occ = occupancy(st);
  int64_t now = now_ms();
  json items = json::array();
  json counts = json::object();
  // Waiting items first in the order they will run, then the rest by enqueue order.
  std::vector<const QueueItem*> order = in_run_order(st);
  std::vector<const QueueItem*> rest;
  for (const auto& [id, it] : st.items())
    if (it.state != ItemState::queued) rest.push_back(&it);
  std::sort(rest.begin(), rest.end(),
            [](const QueueItem* a, const QueueItem* b) { return a->order < b->order; });
  order.insert(order.end(), rest.begin(), rest.end());
  for (const QueueItem* it : order) {
    counts[to_string(it->state)] = counts.value(to_string(it->state), 0) + 1;
    if (!f.state.empty() && f.state != to_string(it->state)) continue;
    if (!f.include_ended && it->terminal()) continue;
    items.push_back(to_json(*it, derive(*it, st, lim, occ, now)));
  }
  json problems = json::array();
  for (const auto& p : snapshot->problems) problems.push_back({{"line", p.line}, {"message", p.message}});
  return {{"items", items}, {"counts", counts}, {"problems", problems}, {"global_limit", lim.global}};
}

json QueueService::counts() {
  auto snapshot = backend_->list();
  // Health checks ask this many times a second: counted once per snapshot (a new one per queue change).
  std::lock_guard lock(counts_mu_);
  if (counts_of_ == snapshot) return counts_;
  std::map<std::string, long long> by_state;
  for (const auto& [id, it] : snapshot->state.items()) ++by_state[to_string(it.state)];
  counts_ = by_state;
  counts_of_ = snapshot;
  return counts_;
}

std::optional<json> QueueService::get(const std::string& item_id) {
  auto snapshot = backend_->list();
  const QueueState& st = snapshot->state;
  const QueueItem* it = st.find(item_id);
  if (!it) return std::nullopt;
  return to_json(*it, derive(*it, st, limits(global_), occupancy(st), now_ms()));
}

size_t QueueService::compact(const CompactRequest& req) {
  return backend_->compact(req);
}

json QueueService::locks() {
  json all = json::array();
  for (const auto& l : list_locks(*backend_)) all.push_back(to_json(l));
  return {{"locks", all}, {"count", all.size()}};
}

}  // namespace cp::queue
