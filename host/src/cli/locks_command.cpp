// `cp-host locks list|release`: the path locks of queued runs (queue/path_locks.hpp), read and released on
// the runtime root directly, with or without a running serve: both go through the queue backend, whose
// own locking keeps a release and serve's claims from crossing.
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/remote_commands.hpp"
#include "control/actor.hpp"
#include "control/path_lock_release.hpp"
#include "queue/queue_backend.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

// Printed from {locks: [...]} as GET /api/locks answers it, local or a server's.
void print_locks(const json& list) {
  const json& locks = array_of(list, "locks");
  if (locks.empty()) {
    std::cout << "no path lock is held\n";
    return;
  }
  std::cout << std::left << std::setw(21) << "LOCK" << std::setw(26) << "SINCE" << std::setw(26) << "EXPIRES"
            << "PATH  HELD BY  (REPO)\n";
  for (const auto& l : locks) {
    const std::string run_id = text_of(l, "run_id");
    std::cout << std::setw(21) << text_of(l, "lock_id") << std::setw(26) << text_of(l, "since")
              << std::setw(26) << text_of(l, "expires_at") << text_of(l, "path") << "  "
              << (run_id.empty() ? "item " + text_of(l, "item_id") : run_id) << "  (" << text_of(l, "repo")
              << ")\n";
  }
}

}  // namespace

void add_locks(CLI::App& app, Globals& g, Runner& run) {
  auto* cmd = app.add_subcommand(
      "locks",
      "Path locks: before serve starts a queued run it locks the run's allowed_paths in its repository; a "
      "run whose paths overlap a held lock waits. Locks end with the run, or by their TTL.");
  cmd->require_subcommand(1);

  auto as_json = std::make_shared<bool>(false);
  auto* list = cmd->add_subcommand("list", "The locks held now: id, since, expiry, path, holder (run), repo");
  list->add_flag("--json", *as_json, "Machine-readable output ({locks: [...], count}, as GET /api/locks)");
  list->callback([&g, &run, as_json] {
    run = [&g, as_json]() -> int {
      if (!g.server.empty()) return remote_view(g, "/api/locks", "the path locks", *as_json, print_locks);
      json all = json::array();
      for (const auto& l : queue::list_locks(g.root)) all.push_back(queue::to_json(l));
      const json list{{"locks", all}, {"count", all.size()}};
      if (*as_json)
        std::cout << list.dump(2) << "\n";
      else
        print_locks(list);
      return kOk;
    };
  });

  struct ReleaseOpts {
    control::LockReleaseAsk ask;
    bool json = false;
  };
  auto ro = std::make_shared<ReleaseOpts>();
  auto* rel = cmd->add_subcommand(
      "release",
      "Force-release a lock (--lock ID, from `locks list`) or a run's locks (--run RUN_ID, optionally only "
      "--path P). The run goes on without them; the release is recorded as a PATH_LOCK_RELEASED host event "
      "and in the governance log, with your user name and --reason. Exit 1: no such held lock; 2: bad input");
  rel->add_option("--lock", ro->ask.lock_id, "A lock id (lk-...)");
  rel->add_option("--run", ro->ask.run_id, "A run id: release the locks it holds");
  rel->add_option("--path", ro->ask.path, "With --run: only the lock on this path");
  rel->add_option("--reason", ro->ask.reason, "Why the lock may go (required)");
  rel->add_flag("--json", ro->json, "Print the released locks as JSON");
  rel->callback([&g, &run, ro] {
    run = [&g, ro]() -> int {
      queue::BackendOptions o;
      o.root = g.root;
      o.create = false;
      auto backend = queue::open_queue_backend(o);
      if (!backend) {
        std::cerr << "cp-host locks release: " << g.root.string() << " has no queue, so no lock is held\n";
        return kInvalid;
      }
      auto r =
          control::force_release_locks(g.root, *backend, ro->ask, control::os_user("human", ro->ask.reason));
      using O = control::LockReleaseResult::Outcome;
      if (r.outcome != O::released) {
        std::string flag = r.pointer == "/lock"     ? "--lock"
                           : r.pointer == "/run_id" ? "--run"
                           : r.pointer == "/path"   ? "--path"
                           : r.pointer == "/reason" ? "--reason"
                                                    : "";
        std::cerr << "cp-host locks release: " << (flag.empty() ? "" : flag + ": ") << r.message
                  << (r.outcome == O::not_found ? " (see `cp-host locks list`)" : "") << "\n";
        return r.outcome == O::not_found ? kInvalid : kUsage;
      }
      if (ro->json) {
        json all = json::array();
        for (const auto& l : r.released) all.push_back(queue::to_json(l));
        std::cout << json{{"released", all}, {"count", all.size()}}.dump(2) << "\n";
      } else {
        for (const auto& l : r.released)
          std::cout << "released " << l.lock_id << " " << l.path << " of "
                    << (l.run_id.empty() ? "item " + l.item_id : l.run_id) << "\n";
      }
      return kOk;
    };
  });
}

}  // namespace cp::cli
