#include "control/run_requeue.hpp"

#include "control/intake_preview.hpp"
#include "core/json_depth.hpp"
#include "core/schema_catalog.hpp"
#include "core/sha256.hpp"
#include "plugin/plugin_info.hpp"
#include "plugin/registry.hpp"
#include "queue/path_locks.hpp"
#include "queue/queue_service.hpp"
#include "run/engine.hpp"
#include "run/runner_driver.hpp"
#include "run/workspace.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/run_index.hpp"

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;
using RequeueOutcome = RequeueResult::Outcome;

namespace {

constexpr uint64_t kMaxContract = uint64_t{16} << 20;

RequeueResult result(RequeueOutcome o, std::string message, json body = nullptr) {
  return {o, std::move(message), std::move(body)};
}

// The earlier run, checked: what it compiled, and where a new run of it would start.
struct Source {
  fs::path dir;
  json manifest;  // the sealed one
  json compiled;
  std::string sha256;
  fs::path repo;
  std::string baseline_ref, baseline_commit;
};

std::optional<Source> check_source(const fs::path& root, const RequeueRequest& req, RequeueResult& why) {
  const std::string& id = req.run_id;
  auto dir = store::valid_run_id(id) ? store::find_run(root, id) : std::nullopt;
  if (!dir) {
    why = result(RequeueOutcome::not_found, "no run " + id);
    return std::nullopt;
  }
  Source s;
  s.dir = *dir;
  // Verify before acting: the contract run again must be the one that was sealed.
  store::BundleCheck check;
  if (std::string refusal = store::refusal_to_act(*dir, &check); !refusal.empty()) {
    why = result(RequeueOutcome::unverified, refusal);
    return std::nullopt;
  }
  s.manifest = check.sealed_manifest;
  if (!s.manifest.is_object() || s.manifest.value("kind", "run") != "run") {
    why = result(RequeueOutcome::refused, "run " + id +
                                              " is not a single contract run (a chain runs again with "
                                              "`cp-host chain run`)");
    return std::nullopt;
  }
  store::FileRead f = store::read_regular_file_beneath(*dir, "contract.json", kMaxContract);
  json doc = f.status == store::FileRead::Status::ok && core::json_depth_ok(f.bytes)
                 ? json::parse(f.bytes, nullptr, false)
                 : json(json::value_t::discarded);
  if (!doc.is_object()) {
    why = result(RequeueOutcome::refused, "the compiled contract of run " + id + " cannot be read");
    return std::nullopt;
  }
  if (auto v = core::schema("compiled_contract").validate(doc); !v.empty()) {
    why = result(RequeueOutcome::refused,
                 "contract.json of run " + id + " breaks schemas/compiled_contract.schema.json at " +
                     (v[0].pointer.empty() ? "/" : v[0].pointer) + ": " + v[0].message);
    return std::nullopt;
  }
  s.sha256 = core::sha256_hex(doc.dump());
  if (s.sha256 != s.manifest.value("contract_sha256", "")) {
    why = result(RequeueOutcome::refused,
                 "contract.json of run " + id + " does not match the sha256 its manifest recorded");
    return std::nullopt;
  }
  s.compiled = std::move(doc);
  std::error_code ec;
  fs::path repo = req.repo.empty() ? fs::path(s.manifest.value("repo", "")) : req.repo;
  s.repo = fs::weakly_canonical(fs::absolute(repo), ec);
  if (repo.empty() || ec || !fs::is_directory(s.repo)) {
    why =
        result(RequeueOutcome::refused, "repository " + repo.string() + " of run " + id + " is not a folder");
    return std::nullopt;
  }
  if (req.allowed_repos) {
    bool allowed = false;
    for (const auto& a : *req.allowed_repos) {
      auto rel = s.repo.lexically_relative(a);
      if (!rel.empty() && *rel.begin() != "..") allowed = true;
    }
    if (!allowed) {
      why = result(RequeueOutcome::repo_not_allowed,
                   s.repo.string() +
                       " is not a repository this server may run on; start serve with --allow-repo " +
                       s.repo.string() + " (or a folder above it)");
      return std::nullopt;
    }
  }
  const json& c = s.compiled["contract"];
  if (req.mode == RequeueMode::replay) {
    s.baseline_ref = s.manifest.value("baseline_commit", "");
    if (s.baseline_ref.empty()) {
      why = result(RequeueOutcome::refused, "run " + id +
                                                " never made its worktree: it has no baseline commit to "
                                                "replay from (queue it from its contract's baseline_ref: "
                                                "from-run)");
      return std::nullopt;
    }
  } else {
    s.baseline_ref = c.value("rollback", json::object()).value("baseline_ref", "HEAD");
  }
  // The run would refuse a baseline it cannot resolve only when it starts: refused now, nothing is queued.
  try {
    s.baseline_commit = run::Workspace::resolve(s.repo, s.baseline_ref);
  } catch (const std::exception& e) {
    why = result(RequeueOutcome::refused, "repository " + s.repo.string() + " cannot be run on from " +
                                              s.baseline_ref + ": " + e.what());
    return std::nullopt;
  }
  return s;
}

}  // namespace

const char* mode_name(RequeueMode m) {
  return m == RequeueMode::replay ? "replay" : "from_run";
}

RequeueResult requeue_run(queue::QueueService& queue, const fs::path& root, const RequeueRequest& req) {
  RequeueResult why;
  try {
    auto s = check_source(root, req, why);
    if (!s) return why;
    queue::NewItem item = queue::QueueService::item_from_compiled(s->compiled, req.priority);
    item.item_id = queue::new_item_id();
    item.contract_path = fs::absolute(s->dir / "contract.json").lexically_normal().string();
    item.repo = s->repo.string();
    item.depends_on = req.depends_on;
    item.run_after = req.run_after;
    item.deadline = req.deadline;
    item.start_by = req.start_by;
    item.submitted_by = req.submitted_by;
    (req.mode == RequeueMode::replay ? item.replay_of : item.from_run) = req.run_id;
    queue::SubmitResult r = queue.submit_item(item);
    switch (r.outcome) {
      case queue::SubmitResult::Outcome::queued:
        return result(RequeueOutcome::queued,
                      "queued " + item.item_id + " (" + mode_name(req.mode) + " of run " + req.run_id + ")",
                      r.item);
      case queue::SubmitResult::Outcome::conflict:
        return result(RequeueOutcome::conflict, r.error);
      case queue::SubmitResult::Outcome::invalid:
        break;
    }
    return result(RequeueOutcome::invalid, r.error);
  } catch (const std::exception& e) {
    return result(RequeueOutcome::error, e.what());
  }
}

RequeueResult preview_requeue(const fs::path& root, const fs::path& plugins_dir, const RequeueRequest& req) {
  RequeueResult why;
  try {
    auto s = check_source(root, req, why);
    if (!s) return why;
    // Loaded as the run will load them: the runner must still be there, its probes answer now.
    run::Prepared prep;
    run::RunOutcome bad;
    if (!run::prepare_replay(req.run_id, root, plugins_dir, prep, bad))
      return result(RequeueOutcome::refused, "run " + req.run_id + " cannot run again: " + bad.error);
    const json& c = s->compiled["contract"];
    json out{{"mode", mode_name(req.mode)},
             {"source_run", req.run_id},
             {"task_id", c.value("task_id", "")},
             {"contract_sha256", prep.compiled.sha256},
             {"runner", prep.runner ? prep.runner->id : c["runtime_options"].value("runner", "")},
             {"pack", s->compiled["pack"].value("pack_id", "")},
             {"repo", s->repo.string()},
             {"baseline_ref", s->baseline_ref},
             {"baseline_commit", s->baseline_commit},
             {"plan", execution_plan(prep)}};
    return result(RequeueOutcome::previewed, "", out);
  } catch (const std::exception& e) {
    return result(RequeueOutcome::error, e.what());
  }
}

}  // namespace cp::control
