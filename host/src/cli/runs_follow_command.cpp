// `cp-host runs follow RUN`: prints a run's events as they are written, as `gh run watch` follows a
// workflow, and ends when the run does — sealed (exit: the verdict's code, as `run` gives it) or awaiting a
// decision (9). A run whose process is gone without sealing ends the follow with 8 and names the recovery.
#include "cli/colour.hpp"
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_commands.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "run/engine.hpp"
#include "store/bundle.hpp"
#include "store/bundle_verify.hpp"
#include "store/host_key.hpp"
#include "store/run_index.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <thread>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct FollowOpts {
  std::string run_id;
  bool json = false;
  int interval_ms = 200;
};

// Reads what was appended to events.jsonl since the last call, whole lines only: the writer appends a line
// at a time, and a line still being written is read on the next call.
class EventTail {
 public:
  explicit EventTail(fs::path file) : file_(std::move(file)) {}

  // Each new complete line, in order.
  std::vector<std::string> next() {
    std::vector<std::string> lines;
    std::ifstream in(file_, std::ios::binary);
    if (!in) return lines;
    in.seekg(static_cast<std::streamoff>(offset_));
    char buf[64 * 1024];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      const auto n = static_cast<size_t>(in.gcount());
      offset_ += n;
      pending_.append(buf, n);
      for (size_t nl; (nl = pending_.find('\n')) != std::string::npos;) {
        lines.push_back(pending_.substr(0, nl));
        pending_.erase(0, nl + 1);
      }
      // A line longer than any event cp-host writes is not an event: dropped, and said so once read whole.
      if (pending_.size() > core::kMaxJsonFileBytes) {
        pending_.clear();
        lines.emplace_back();
      }
    }
    return lines;
  }

 private:
  fs::path file_;
  uint64_t offset_ = 0;
  std::string pending_;
};

// Whether the bundle is what its seal signed, with the host key; the problems said on stderr when not.
bool bundle_verifies(const std::string& run_id, const fs::path& dir) {
  store::KeyRing keys;
  try {
    keys = store::KeyRing::of_dir(store::key_dir());
  } catch (const store::KeyError&) {
    // No usable key: the check says the seal is signed by no trusted key.
  }
  const store::BundleCheck c = store::verify_settled(dir, keys);
  if (c.ok()) return true;
  for (const auto& p : c.problems) std::cerr << "TAMPERED: " << run_id << ": " << terminal_safe(p) << "\n";
  std::cerr << "cp-host: run " << run_id << " is sealed but its bundle does not verify (exit 1)\n";
  return false;
}

int follow(const Globals& g, const FollowOpts& o) {
  auto dir = store::valid_run_id(o.run_id) ? store::find_run(g.root, o.run_id) : std::nullopt;
  if (!dir) {
    std::cerr << "cp-host: no run '" << o.run_id << "' under " << core::runs_dir(g.root).string()
              << " (see `cp-host runs list`)\n";
    return kInvalid;
  }
  EventTail tail(*dir / "events.jsonl");
  int unheld = 0;
  for (;;) {
    // The manifest is read before the events: once it says the run ended, the events read after it hold
    // the last one.
    const json m = core::read_json_file(*dir / "manifest.json");
    const std::string status = m.is_object() && m.contains("status") && m["status"].is_string()
                                   ? m["status"].get<std::string>()
                                   : "";
    const bool live = store::held_by_live_process(*dir);
    for (const auto& line : tail.next()) print_event(line, o.json, o.run_id);
    if (status == "sealed" || status == "awaiting_approval") {
      const std::string verdict =
          m.contains("verdict") && m["verdict"].is_string() ? m["verdict"].get<std::string>() : "";
      // The verdict read from manifest.json is the one its seal signed, or the answer is 1: a bundle
      // changed after its seal never passes for its claimed verdict.
      if (status == "sealed" && !bundle_verifies(o.run_id, *dir)) return kInvalid;
      const int code = status == "awaiting_approval" ? 9 : run::exit_code_for_verdict(verdict);
      std::cerr << "cp-host: run " << o.run_id << " "
                << (status == "sealed" ? "sealed " + paint_verdict(verdict, 2)
                                       : paint("is awaiting approval", Colour::yellow, 2))
                << " (exit " << code << ")\n";
      return code;
    }
    // Not ended and nobody holds it, a few looks in a row (a process may be between taking and retaking
    // the lock): its process died without sealing.
    unheld = live ? 0 : unheld + 1;
    if (unheld >= 3) {
      std::cerr << "cp-host: run " << o.run_id << " is " << (status.empty() ? "unreadable" : status)
                << " and no process holds it: it ended without a seal (`cp-host runs recover` seals it "
                   "error)\n";
      return run::exit_code_for_verdict("error");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
  }
}

}  // namespace

int exit_if_verified(const Globals& g, const std::string& run_id, int verdict_code) {
  if (run_id.empty()) return verdict_code;  // the attempt ended before a bundle existed
  if (!g.server.empty()) {
    int code = kOk;
    auto d = remote_get(g, remote_run_path(run_id), "run " + run_id, true, code);
    if (!d) return code;
    const json& v = object_of(*d, "verification");
    if (flag_of(v, "ok", false) || text_of(v, "state") == "live") return verdict_code;
    for (const auto& p : array_of(v, "problems"))
      std::cerr << "TAMPERED: " << terminal_safe(run_id) << ": "
                << (p.is_string() ? p.get<std::string>() : p.dump()) << "\n";
    std::cerr << "cp-host: run " << terminal_safe(run_id) << " does not verify on the server (exit 1)\n";
    return kInvalid;
  }
  auto dir = store::valid_run_id(run_id) ? store::find_run(g.root, run_id) : std::nullopt;
  if (!dir) {
    std::cerr << "cp-host: the run " << terminal_safe(run_id) << " of the item has no bundle under "
              << core::runs_dir(g.root).string() << " (exit 1)\n";
    return kInvalid;
  }
  return bundle_verifies(run_id, *dir) ? verdict_code : kInvalid;
}

void add_runs_follow(CLI::App& runs, Globals& g, Runner& run) {
  auto o = std::make_shared<FollowOpts>();
  auto* f = runs.add_subcommand(
      "follow",
      "Print a run's events as they are written until it ends; exit with its verdict's code (0 success, 4 "
      "failure, 5 denied, 6 timeout, 7 cancelled, 8 error, 9 awaiting approval)");
  f->add_option("run_id", o->run_id, "Run id")->required();
  f->add_flag("--json", o->json, "Print the raw event lines (JSON Lines)");
  f->add_option("--interval", o->interval_ms, "How often to look for new events, in ms (default 200)")
      ->check(CLI::Range(20, 60000));
  f->callback([&g, &run, o] {
    run = [&g, o] {
      return g.server.empty() ? follow(g, *o) : remote_runs_follow(g, o->run_id, o->json, o->interval_ms);
    };
  });
}

}  // namespace cp::cli
