// `cp-host queue watch [ITEM]`: the queue as it moves, one line per change of an item (its state, its
// result, its run), until the item — or, without one, every item — has ended. Exit: the item's run verdict's
// code (as `run` gives it; 7 cancelled), 0 when watching the whole queue, 1 for an item that does not exist.
#include "cli/colour.hpp"
#include "cli/commands.hpp"
#include "cli/remote_commands.hpp"
#include "queue/queue_service.hpp"
#include "run/engine.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

namespace cp::cli {

using nlohmann::json;

namespace {

struct WatchOpts {
  std::string item;
  bool json = false;
  int interval_ms = 500;
};

std::string field(const json& it, const char* k) {
  std::string s = it.is_object() && it.contains(k) && it[k].is_string() ? it[k].get<std::string>() : "";
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

// The run of an item's last attempt, if it has one.
std::string last_run(const json& it) {
  if (!it.contains("attempts") || !it["attempts"].is_array() || it["attempts"].empty()) return "";
  return field(it["attempts"].back(), "run_id");
}

bool ended(const std::string& state) {
  return state == "done" || state == "cancelled";
}

int watch(const Globals& g, const WatchOpts& o) {
  std::map<std::string, std::string> seen;  // item id -> what was last printed of it
  for (;;) {
    json list;
    if (!g.server.empty()) {
      int code = kOk;
      auto snapshot = remote_queue_snapshot(g, code);
      if (!snapshot) return code;
      list = *snapshot;
    } else {
      queue::QueueService svc(g.root, nullptr);
      list = svc.list({"", true});
    }
    const json items = list.is_object() && list.contains("items") && list["items"].is_array() ? list["items"]
                                                                                              : json::array();
    bool found = false, all_ended = true;
    for (const auto& it : items) {
      const std::string id = field(it, "item_id"), state = field(it, "state"), status = field(it, "status");
      if (!o.item.empty() && id != o.item) continue;
      found = true;
      all_ended = all_ended && ended(state);
      const std::string now = state + "|" + status + "|" + last_run(it);
      if (seen[id] == now) continue;
      seen[id] = now;
      if (o.json) {
        std::cout << it.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      } else {
        std::cout << id << "  " << state;
        if (!status.empty()) std::cout << " -> " << paint_verdict(status);
        if (!last_run(it).empty()) std::cout << "  run " << last_run(it);
        std::cout << "\n";
      }
      std::cout.flush();
      if (!o.item.empty() && ended(state)) {
        if (state == "cancelled") return run::exit_code_for_verdict("cancelled");
        if (status == "awaiting_approval") return 9;
        // The queue's word for the result is checked against the run's sealed bundle.
        return exit_if_verified(g, last_run(it), run::exit_code_for_verdict(status));
      }
    }
    if (!o.item.empty() && !found) {
      std::cerr << "cp-host: no queue item '" << o.item << "' (see `cp-host queue list`)\n";
      return kInvalid;
    }
    if (o.item.empty() && all_ended) {
      std::cerr << "cp-host: nothing is waiting or running\n";
      return kOk;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
  }
}

}  // namespace

void add_queue_watch(CLI::App& queue, Globals& g, Runner& run) {
  auto o = std::make_shared<WatchOpts>();
  auto* w = queue.add_subcommand(
      "watch",
      "Print each change of the queue's items (state, result, run) until ITEM has ended (exit: its run's "
      "verdict code, 7 cancelled) or, without ITEM, until nothing waits or runs (exit 0)");
  w->add_option("item", o->item, "Queue item id (default: the whole queue)");
  w->add_flag("--json", o->json, "Print each changed item as a JSON line (as queue list shows items)");
  w->add_option("--interval", o->interval_ms, "How often to look, in ms (default 500)")
      ->check(CLI::Range(20, 60000));
  w->callback([&g, &run, o] { run = [&g, o] { return watch(g, *o); }; });
}

}  // namespace cp::cli
