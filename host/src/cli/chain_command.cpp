// `cp-host chain run CHAIN`: a task chain, step by step, into a chain bundle (see chain/chain_runner.hpp).
// Exit codes as `cp-host run`: 0 success, 2 invalid chain (nothing run), 3 internal error, 4 failure
// (a step failed or a quorum was missed), 5 denied, 6 timeout, 7 cancelled, 8 error.
// `cp-host chain submit|cancel`: a chain queued for `serve` to run (chain/chain_queue.hpp), a queued chain
// cancelled, as POST /api/chains and /api/chains/{id}/cancel do.
// `cp-host chain list|show`: the chain executions under the root (the queued ones first), and one of them
// step by step (chain/chain_view.hpp, chain_queue.hpp), as GET /api/chains and /api/chains/{id} answer.
#include "chain/chain_queue.hpp"
#include "chain/chain_runner.hpp"
#include "chain/chain_view.hpp"
#include "cli/commands.hpp"
#include "cli/diagnostic_output.hpp"
#include "cli/json_fields.hpp"
#include "cli/read_views.hpp"
#include "control/actor.hpp"
#include "core/json_depth.hpp"
#include "plugin/registry.hpp"
#include "run/engine.hpp"
#include "store/run_index.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace cp::cli {

using nlohmann::json;

namespace {

std::atomic<bool> g_chain_interrupt{false};

extern "C" void on_chain_signal(int) {
  g_chain_interrupt.store(true);
}

int chain_exit(const chain::ChainOutcome& o) {
  if (o.stage == chain::ChainOutcome::Stage::invalid) return o.diagnostics.empty() ? kUsage : kInvalid;
  if (o.stage == chain::ChainOutcome::Stage::internal) return kInternal;
  return run::exit_code_for_verdict(o.verdict);
}

// One line per step: its state, verdict, runs (with reviewers' votes) and the handoff that led to it.
// A handoff's summary is what an agent wrote: every field is read through json_fields.hpp.
void print_view(const json& v) {
  auto str = [](const json& j, const char* k) { return text_of(j, k, "-"); };
  const std::string verdict = text_of(v, "verdict");
  std::cout << "chain    " << str(v, "run_id") << " (" << str(v, "chain_id") << ")\nstatus   "
            << str(v, "status") << (verdict.empty() ? std::string() : " " + verdict) << "\n";
  if (v.contains("state")) std::cout << "state    " << str(v, "state") << "\n";
  if (!text_of(v, "origin").empty()) std::cout << "origin   " << str(v, "origin") << "\n";
  for (const auto& s : array_of(v, "steps")) {
    std::cout << std::left << std::setw(22) << str(s, "step_id") << std::setw(10) << str(s, "kind")
              << std::setw(12) << str(s, "role") << std::setw(12) << str(s, "state") << text_of(s, "verdict")
              << "\n";
    const json& handoff = object_of(s, "handoff");
    if (!handoff.empty())
      std::cout << "    " << str(handoff, "from_role") << " -> " << str(handoff, "to_role") << ": "
                << str(handoff, "summary") << "\n";
    if (s.is_object() && s.contains("waiting_on"))
      std::cout << "    waiting on " << str(s, "waiting_on") << "\n";
    std::string deps;
    for (const auto& d : array_of(s, "depends_on"))
      if (d.is_string()) deps += (deps.empty() ? "" : ", ") + terminal_safe(d.get<std::string>());
    if (!deps.empty()) std::cout << "    after " << deps << "\n";
    for (const auto& r : array_of(s, "runs")) {
      const bool votes = r.is_object() && r.contains("approve") && r["approve"].is_boolean();
      std::cout << "    run " << str(r, "run_id") << "  " << str(r, "status") << " " << str(r, "verdict")
                << (votes ? (flag_of(r, "approve", false) ? "  approves" : "  does not approve") : "")
                << "\n";
    }
    const json& quorum = object_of(s, "quorum");
    if (!quorum.empty())
      std::cout << "    quorum " << count_of(quorum, "approvals") << " of " << count_of(quorum, "required")
                << (flag_of(quorum, "met", false) ? " met" : " not met") << "\n";
  }
}

}  // namespace

void add_chain(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string chain, repo = ".";
    bool json = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* chain = app.add_subcommand("chain", "Task chains: contracts for roles, run in order with handoffs");
  chain->require_subcommand(1);
  auto* cmd = chain->add_subcommand(
      "run",
      "Run a task chain (schemas/task_chain.schema.json): each task or reviewer step is a full run with its "
      "own "
      "bundle; a step's change is committed onto branch cp-chain/<chain run id> and the next step starts "
      "there. Writes a chain bundle with reports/chain_report.json (lifecycle, quorum outcomes, step "
      "verdicts). A failed step or a missed quorum stops the chain with an incident pack naming the step.\n"
      "Exit codes: 0 success, 2 invalid chain (nothing run), 3 internal error, 4 failure, 5 denied, "
      "6 timeout, 7 cancelled, 8 error.");
  cmd->add_option("chain", o->chain, "Task chain JSON file")->required();
  cmd->add_option("--repo", o->repo,
                  "Git repository the steps work on (default: .); only the chain branch moves");
  cmd->add_flag("--json", o->json, "Print the outcome (with the chain report) as JSON");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress lines");
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      struct sigaction sa {};
      sa.sa_handler = &on_chain_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      sigaction(SIGINT, &sa, nullptr);
      sigaction(SIGTERM, &sa, nullptr);
      chain::ChainRequest req;
      req.chain_path = o->chain;
      req.repo = o->repo;
      req.root = g.root;
      req.plugins_dir = g.plugins_dir;
      req.interrupt = &g_chain_interrupt;
      if (!o->quiet)
        req.progress = [](const std::string& l) { std::cerr << "· " << terminal_safe(l) << std::endl; };
      auto out = chain::run_chain(req);
      int code = chain_exit(out);
      if (out.stage == chain::ChainOutcome::Stage::invalid) {
        print_diagnostics(out.diagnostics);
        std::cerr << "cp-host chain run: " << out.error << "; nothing was run.\n";
      } else if (out.stage == chain::ChainOutcome::Stage::internal) {
        std::cerr << "cp-host chain run: " << terminal_safe(out.error) << "\n";
      }
      if (o->json) {
        json j{{"exit_code", code}};
        if (!out.run_id.empty()) j["run_id"] = out.run_id;
        if (!out.bundle_dir.empty()) j["bundle"] = out.bundle_dir.string();
        if (out.stage == chain::ChainOutcome::Stage::sealed)
          j["report"] = out.report;
        else
          j["error"] = out.error;
        if (!out.diagnostics.empty()) j["diagnostics"] = contract::diagnostics_json(out.diagnostics);
        std::cout << j.dump(2) << "\n";
      } else if (out.stage == chain::ChainOutcome::Stage::sealed) {
        std::cout << "chain    " << out.run_id << "\nverdict  " << out.verdict << "\nreason   "
                  << terminal_safe(out.reason) << "\n";
        for (const auto& s : array_of(out.report, "steps"))
          std::cout << "step     " << text_of(s, "step_id") << " (" << text_of(s, "role")
                    << "): " << text_of(s, "verdict") << "\n";
        std::cout << "loop     " << (out.report["lifecycle"]["closed"].get<bool>() ? "closed" : "not closed")
                  << "\n";
        if (out.report.contains("result"))
          std::cout << "result   " << out.report["result"]["branch"].get<std::string>() << " at "
                    << out.report["result"]["commit"].get<std::string>().substr(0, 12) << "\n";
        std::cout << "bundle   " << out.bundle_dir.string() << "\nexit     " << code << "\n";
      }
      return code;
    };
  });

  struct ReadOpts {
    std::string run_id;
    size_t limit = 50;
    bool json = false;
  };
  auto ro = std::make_shared<ReadOpts>();
  auto* list = chain->add_subcommand("list", "Chain executions under the root, newest first");
  list->add_option("--limit", ro->limit, "At most this many (default 50)");
  list->add_flag("--json", ro->json, "Machine-readable output");
  list->callback([&g, &run, ro] {
    run = [&g, ro]() -> int {
      store::RunQuery q;
      q.kind = "chain";
      json rows = json::array();
      // The chains still in the queue first: the newest, and the ones moving.
      for (auto& row : chain::list_queued_chains(g.root)) {
        if (rows.size() == ro->limit) break;
        rows.push_back(std::move(row));
      }
      for (const auto& s : store::list_runs(g.root)) {
        if (!store::matches(s, q)) continue;
        if (rows.size() == ro->limit) break;
        json row = s.fields;
        row["chain_id"] = s.task_id;
        rows.push_back(row);
      }
      if (ro->json) {
        std::cout << json{{"chains", rows}, {"count", rows.size()}}.dump(2) << "\n";
        return kOk;
      }
      if (rows.empty()) std::cout << "no chains under " << g.root.string() << "\n";
      for (const auto& r : rows)
        std::cout << std::left << std::setw(48) << r.value("run_id", "") << std::setw(12)
                  << r.value("status", "") << std::setw(10)
                  << (r["verdict"].is_string() ? r["verdict"].get<std::string>() : std::string("-"))
                  << r.value("created_at", "") << "\n";
      return kOk;
    };
  });
  auto* show = chain->add_subcommand(
      "show",
      "One chain execution step by step: each step's state, its runs (status, verdict, runner), the handoff "
      "before it, a review's votes and quorum; a running chain as far as it got; a queued chain with each "
      "step's queue state, what it waits on, and its dependencies. Exit 1 when RUN is no chain");
  show->add_option("run_id", ro->run_id, "The chain's run id (from `chain list` or `chain run`)")->required();
  show->add_flag("--json", ro->json, "Print the view as JSON");
  show->callback([&g, &run, ro] {
    run = [&g, ro]() -> int {
      if (auto queued = chain::queued_chain_view(g.root, ro->run_id)) {
        if (ro->json)
          std::cout << queued->dump(2) << "\n";
        else
          print_view(*queued);
        return kOk;
      }
      auto v = chain::chain_view(g.root, ro->run_id);
      if (v.outcome != chain::ChainView::Outcome::ok) {
        std::cerr << "cp-host chain show: " << v.message << "\n";
        return v.outcome == chain::ChainView::Outcome::unreadable ? kInternal : kInvalid;
      }
      if (ro->json)
        std::cout << v.view.dump(2) << "\n";
      else
        print_view(v.view);
      return kOk;
    };
  });

  struct SubmitOpts {
    std::string chain, repo = ".", origin = "cli";
    int priority = 5;
    bool json = false;
  };
  auto so = std::make_shared<SubmitOpts>();
  auto* submit = chain->add_subcommand(
      "submit",
      "Queue a task chain for `cp-host serve` to run (the chain run's one-shot twin is `chain run`). Every "
      "step contract is checked first; on any error nothing is queued. The chain becomes a queue item whose "
      "steps are queue items with dependencies (depends_on, parallel_group: steps that start together "
      "within the concurrency limit and the path locks), so serve runs them, survives restarts, and "
      "shows them (`chain show`, GET /api/chains/{id}). Each passed task step's change is committed onto "
      "cp-chain/<chain run id>, where the steps after it start. A step whose pack requires approval pauses "
      "what depends on it until a person approves (`cp-host approve`); a rejection ends the chain.\n"
      "Prints the chain's run id. Exit codes: 0 queued, 1 invalid chain (diagnostics printed), 2 usage or "
      "a repository that cannot be run on, 3 the queue refused it.");
  submit->add_option("chain", so->chain, "Task chain JSON file (its contract paths are relative to it)")
      ->required();
  submit->add_option("--repo", so->repo, "Git repository the steps run on (default: .)");
  submit->add_option("--origin", so->origin,
                     "Free text shown with the chain: where it came from (default: cli)");
  submit->add_option("--priority", so->priority, "Priority of the chain's items, 0..9 (default 5)")
      ->check(CLI::Range(0, 9));
  submit->add_flag("--json", so->json, "Print the queued chain's view as JSON");
  submit->callback([&g, &run, so] {
    run = [&g, so]() -> int {
      std::ifstream in(so->chain, std::ios::binary);
      if (!in) {
        std::cerr << "cp-host chain submit: cannot read " << so->chain << "\n";
        return kUsage;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      json doc = core::json_depth_ok(text) ? json::parse(text, nullptr, false) : json();
      if (!doc.is_object()) {
        std::cerr << "cp-host chain submit: " << so->chain << " is not a JSON object; see `cp-host validate "
                  << so->chain << "`\n";
        return kInvalid;
      }
      plugin::Registry reg;
      if (!load_plugins(g, reg)) return kUsage;
      chain::QueuedChainRequest req;
      req.chain = doc;
      req.base_dir = std::filesystem::absolute(so->chain).parent_path();
      req.source = so->chain;
      req.source_text = text;
      req.repo = so->repo;
      req.root = g.root;
      req.plugins_dir = g.plugins_dir;
      req.registry = &reg;
      req.submitted_by = control::os_user().by;
      req.origin = so->origin;
      req.priority = so->priority;
      auto r = chain::submit_queued_chain(req);
      using O = chain::QueuedChainResult::Outcome;
      if (r.outcome != O::queued) {
        print_diagnostics(r.diagnostics);
        std::cerr << "cp-host chain submit: " << r.error << "; nothing was queued.\n";
        return r.outcome == O::conflict ? kInternal : r.diagnostics.empty() ? kUsage : kInvalid;
      }
      if (so->json)
        std::cout << r.view.dump(2) << "\n";
      else
        std::cout << r.chain_id << "\n";
      return kOk;
    };
  });

  struct CancelOpts {
    std::string run_id, reason;
    bool json = false;
  };
  auto co = std::make_shared<CancelOpts>();
  auto* cancel = chain->add_subcommand(
      "cancel",
      "Cancel a queued chain: its steps that have not started never will, running steps are stopped (their "
      "runs seal cancelled), steps waiting for approval are denied by rule; the chain then seals cancelled. "
      "Exit codes: 0 cancelled, 1 no such queued chain, 4 it has already ended.");
  cancel->add_option("run_id", co->run_id, "The chain's run id (from `chain submit` or `chain list`)")
      ->required();
  cancel->add_option("--reason", co->reason, "Why, recorded with the cancel");
  cancel->add_flag("--json", co->json, "Print the outcome as JSON");
  cancel->callback([&g, &run, co] {
    run = [&g, co]() -> int {
      auto r =
          chain::cancel_queued_chain(g.root, co->run_id, control::os_user("human", co->reason), co->reason);
      using O = chain::CancelChainResult::Outcome;
      if (co->json)
        std::cout << json{{"outcome", r.outcome == O::cancelled       ? "cancelled"
                                      : r.outcome == O::already_ended ? "already_ended"
                                                                      : "not_found"},
                          {"message", r.message},
                          {"cancelled", r.cancelled},
                          {"stopping", r.stopping},
                          {"rejected", r.rejected},
                          {"view", r.view}}
                         .dump(2)
                  << "\n";
      else
        (r.outcome == O::cancelled ? std::cout : std::cerr) << r.message << "\n";
      return r.outcome == O::cancelled ? kOk : r.outcome == O::not_found ? kInvalid : 4;
    };
  });
}

}  // namespace cp::cli
