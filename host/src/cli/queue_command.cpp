// `cp-host queue submit|list|show|cancel|priority|compact`: the run queue under
// <root>/.runtime-cache/cortexpilot. The same QueueService answers the REST API, so both see and change
// exactly the same queue. Submitting does not run anything: `cp-host serve` takes items from the queue.
#include "cli/commands.hpp"
#include "cli/diagnostic_output.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_commands.hpp"
#include "core/json_depth.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_service.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <iomanip>
#include <iostream>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string os_user() {
  if (const passwd* pw = ::getpwuid(::geteuid())) return std::string("os:") + pw->pw_name;
  return "os:uid" + std::to_string(::geteuid());
}

}  // namespace

void add_queue(CLI::App& app, Globals& g, Runner& run) {
  auto* cmd = app.add_subcommand(
      "queue",
      "The run queue (<root>/.runtime-cache/cortexpilot/queue.jsonl). Items wait here until `cp-host serve` "
      "runs them: higher priority first, then in submission order, within the concurrency limits.");
  cmd->require_subcommand(1);

  struct SubmitOpts {
    std::string contract, repo, run_after, deadline, start_by;  // repo "": "." (remote: the server's --repo)
    int priority = -1;
    std::vector<std::string> after;
    bool json = false;
  };
  auto so = std::make_shared<SubmitOpts>();
  auto* submit = cmd->add_subcommand("submit", "Check a contract (as `cp-host validate` does) and queue it");
  submit->add_option("contract", so->contract, "Task contract JSON file")->required();
  submit->add_option("--repo", so->repo,
                     "Git repository the run works on (default: .; with --server, the server's --repo)");
  submit->add_option("--priority", so->priority, "0..9, higher runs first (default: the contract's, else 5)")
      ->check(CLI::Range(0, 9));
  submit->add_option("--after", so->after, "Run only after this queue item ended in success (repeatable)");
  submit->add_option("--run-after", so->run_after,
                     "Not before this time (ISO-8601 UTC, e.g. 2026-11-25T10:00:00Z)");
  submit->add_option("--deadline", so->deadline, "Should have finished by this time (SLA)");
  submit->add_option("--start-by", so->start_by, "Should have started by this time (SLA)");
  submit->add_flag("--json", so->json, "Print the queued item as JSON");
  submit->callback([&g, &run, so] {
    run = [&g, so]() -> int {
      std::error_code ec;
      auto size = std::filesystem::file_size(so->contract, ec);
      std::ifstream in(so->contract, std::ios::binary);
      if (ec || !in) {
        std::cerr << "cp-host queue submit: cannot read " << so->contract << "\n";
        return kUsage;
      }
      // The same limits as `cp-host validate`: a huge or deeply nested file is refused before parsing.
      if (size > (16u << 20)) {
        std::cerr << so->contract << ": file is " << (size >> 20)
                  << " MiB; refused unread (limit 16 MiB for a contract)\n";
        return kInvalid;
      }
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!core::json_depth_ok(text)) {
        std::cerr << so->contract << ": nested more than " << core::kMaxJsonDepth
                  << " levels deep; refused unparsed\n";
        return kInvalid;
      }
      json doc = json::parse(text, nullptr, false);
      if (doc.is_discarded()) {
        std::cerr << so->contract << ": not JSON; see `cp-host validate " << so->contract << "`\n";
        return kInvalid;
      }
      if (!g.server.empty()) {
        // The server checks and queues it; the repository is the server's path to it.
        std::error_code ec;
        json body{{"contract", doc}};
        if (!so->repo.empty())
          body["repo"] = std::filesystem::absolute(so->repo, ec).lexically_normal().string();
        if (so->priority >= 0) body["priority"] = so->priority;
        if (!so->after.empty()) body["depends_on"] = so->after;
        if (!so->run_after.empty()) body["run_after"] = so->run_after;
        if (!so->deadline.empty()) body["deadline"] = so->deadline;
        if (!so->start_by.empty()) body["start_by"] = so->start_by;
        return remote_queue_submit(g, body, so->json);
      }
      plugin::Registry reg;
      if (!load_plugins(g, reg)) return kUsage;
      queue::QueueService svc(g.root, &reg);
      queue::SubmitRequest r;
      r.contract = doc;
      r.source = so->contract;
      r.source_text = text;
      r.repo = so->repo.empty() ? "." : so->repo;
      if (so->priority >= 0) r.priority = so->priority;
      r.depends_on = so->after;
      r.run_after = so->run_after;
      r.deadline = so->deadline;
      r.start_by = so->start_by;
      r.submitted_by = os_user();
      auto res = svc.submit(r);
      if (res.outcome != queue::SubmitResult::Outcome::queued) {
        print_diagnostics(res.diagnostics);
        std::cerr << "cp-host queue submit: " << res.error << "; nothing was queued.\n";
        return res.outcome == queue::SubmitResult::Outcome::invalid && !res.diagnostics.empty() ? kInvalid
                                                                                                : kUsage;
      }
      if (so->json)
        std::cout << res.item.dump(2) << "\n";
      else
        std::cout << "queued " << res.item.value("item_id", "") << " (task " << res.item.value("task_id", "")
                  << ", priority " << res.item.value("priority", 5) << ")\n";
      return kOk;
    };
  });

  struct ListOpts {
    bool json = false;
    std::string state;
    bool active = false;
  };
  auto lo = std::make_shared<ListOpts>();
  auto* list = cmd->add_subcommand("list", "Items in run order, with eligibility and SLA state");
  list->add_flag("--json", lo->json, "Machine-readable output");
  list->add_option("--state", lo->state, "Only items in this state")
      ->check(CLI::IsMember({"queued", "claimed", "running", "done", "cancelled"}));
  list->add_flag("--active", lo->active, "Hide items that have ended");
  list->callback([&g, &run, lo] {
    run = [&g, lo]() -> int {
      if (!g.server.empty()) return remote_queue_list(g, lo->state, lo->active, lo->json);
      queue::QueueService svc(g.root, nullptr);
      json out = svc.list({lo->state, !lo->active});
      if (lo->json)
        std::cout << out.dump(2) << "\n";
      else
        print_queue_items(out);
      return kOk;
    };
  });

  auto show_id = std::make_shared<std::string>();
  auto* show = cmd->add_subcommand("show", "One item as JSON, with every attempt");
  show->add_option("item", *show_id, "Queue item id")->required();
  show->add_flag("--json")->description("The output is JSON in any case");
  show->callback([&g, &run, show_id] {
    run = [&g, show_id]() -> int {
      queue::QueueService svc(g.root, nullptr);
      auto it = svc.get(*show_id);
      if (!it) {
        std::cerr << "cp-host: no queue item '" << *show_id << "' (see `cp-host queue list`)\n";
        return kInvalid;
      }
      std::cout << it->dump(2) << "\n";
      return kOk;
    };
  });

  struct CancelOpts {
    std::string item, reason = "cancelled from the command line";
  };
  auto co = std::make_shared<CancelOpts>();
  auto* cancel = cmd->add_subcommand(
      "cancel",
      "Cancel an item: a waiting one ends at once; a running one is stopped by serve and sealed cancelled");
  cancel->add_option("item", co->item, "Queue item id")->required();
  cancel->add_option("--reason", co->reason, "Recorded with the cancel");
  cancel->callback([&g, &run, co] {
    run = [&g, co]() -> int {
      if (!g.server.empty()) return remote_queue_cancel(g, co->item, co->reason);
      queue::QueueService svc(g.root, nullptr);
      switch (svc.cancel(co->item, os_user(), co->reason)) {
        case queue::CancelOutcome::cancelled:
          std::cout << "cancelled " << co->item << "\n";
          return kOk;
        case queue::CancelOutcome::requested:
          std::cout << "cancel requested for " << co->item << " (running; serve stops it)\n";
          return kOk;
        case queue::CancelOutcome::already_ended:
          std::cerr << "cp-host: item " << co->item << " has already ended\n";
          return kInvalid;
        case queue::CancelOutcome::not_found:
          std::cerr << "cp-host: no queue item '" << co->item << "' (see `cp-host queue list`)\n";
          return kInvalid;
      }
      return kInternal;
    };
  });

  struct PriorityOpts {
    std::string item;
    int priority = 5;
  };
  auto po = std::make_shared<PriorityOpts>();
  auto* priority = cmd->add_subcommand(
      "priority",
      "Give a waiting item another priority (0..9, higher runs first), which moves it in run order; an item "
      "already claimed, running or ended keeps its own (exit 1). Recorded in queue.jsonl with who asked");
  priority->add_option("item", po->item, "Queue item id")->required();
  priority->add_option("priority", po->priority, "0..9")->required()->check(CLI::Range(0, 9));
  priority->callback([&g, &run, po] {
    run = [&g, po]() -> int {
      queue::QueueService svc(g.root, nullptr);
      switch (svc.set_priority(po->item, po->priority, os_user())) {
        case queue::Change::applied:
          std::cout << "item " << po->item << " now has priority " << po->priority << "\n";
          return kOk;
        case queue::Change::unchanged:
          std::cout << "item " << po->item << " already has priority " << po->priority << "\n";
          return kOk;
        case queue::Change::refused: {
          auto it = svc.get(po->item);
          std::cerr << "cp-host: item " << po->item << " is "
                    << (it ? it->value("state", "not waiting") : std::string("not waiting"))
                    << "; only a waiting (queued) item's priority can change\n";
          return kInvalid;
        }
        case queue::Change::not_found:
          std::cerr << "cp-host: no queue item '" << po->item << "' (see `cp-host queue list`)\n";
          return kInvalid;
      }
      return kInternal;
    };
  });

  auto keep_hours = std::make_shared<double>(24);
  auto* compact = cmd->add_subcommand(
      "compact", "Move ended items out of queue.jsonl into queue-history/ (the full log is kept there)");
  compact->add_option("--keep-hours", *keep_hours,
                      "Keep items that ended within this many hours (default 24)");
  compact->callback([&g, &run, keep_hours] {
    run = [&g, keep_hours]() -> int {
      queue::QueueService svc(g.root, nullptr);
      size_t dropped = svc.compact({static_cast<int64_t>(*keep_hours * 3600 * 1000)});
      std::cout << "moved " << dropped << " operations of ended items to queue-history/\n";
      return kOk;
    };
  });

  add_queue_rerun(*cmd, g, run);
  add_queue_watch(*cmd, g, run);
}

}  // namespace cp::cli
