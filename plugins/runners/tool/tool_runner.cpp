// Runner `tool`: runs the contract's runtime_options.commands in the worktree, in order, each only when
// it matches none of the contract's forbidden actions and the command allowlist admits it (policy checks;
// the run's sandbox is the boundary). Commands are split into argv and run without a shell, so ';', '|' or
// '$(...)' can never smuggle in a second command; argv[0] must be a bare program name found in PATH (a path
// such as ./true could be any binary) unless an allowlist entry names that exact path.
#include "../../common/command_policy.hpp"
#include "../../common/forbidden_match.hpp"
#include "../../common/threaded_run.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace {

using nlohmann::json;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "stop_on_failure": {"type": "boolean", "description": "Stop at the first command that fails (default true)."},
    "command_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 86400}
  }
})";

class ToolRun : public cp::plugins::ThreadedRun {
 public:
  ToolRun(cp::Context ctx, json run, bool stop_on_failure, int command_timeout)
      : ctx_(ctx),
        run_(std::move(run)),
        stop_on_failure_(stop_on_failure),
        command_timeout_(command_timeout) {
    launch();
  }
  ~ToolRun() override { stop_and_join(); }

 private:
  void execute() override {
    json commands_out = json::array();
    try {
      json policies = run_.value("policies", json::object());
      cp::plugins::CommandAllowlist allow(policies.value("command_allowlist", json::object()));
      auto forbidden = cp::plugins::ForbiddenActions::for_run(run_["contract"], policies);
      json cmds = run_["contract"]["runtime_options"].value("commands", json::array());
      // A step whose whole job is its acceptance tests (a chain's "run the test on the fix") has nothing to
      // run itself: the host's tests gate is its proof. A run with neither commands nor tests is a mistake.
      if (cmds.empty()) {
        const json& tests = run_["contract"].value("acceptance_tests", json::array());
        if (tests.is_array() && !tests.empty())
          return finish({{"status", "completed"},
                         {"reason", "no commands to run: the acceptance tests are this run's proof"},
                         {"commands", commands_out},
                         {"usage", {{"turns", 0}}}});
        return finish({{"status", "error"},
                       {"reason",
                        "the contract lists no runtime_options.commands for the tool runner and no "
                        "acceptance_tests: there is nothing to run"},
                       {"commands", commands_out}});
      }
      std::string bundle = ctx_.bundle_dir();
      int index = 0;
      for (const auto& c : cmds) {
        std::string line = c.get<std::string>();
        if (cancelled_ || ctx_.cancelled())
          return finish(
              {{"status", "cancelled"}, {"reason", "cancelled before: " + line}, {"commands", commands_out}});
        std::vector<std::string> argv;
        std::string denial;
        const cp::plugins::AllowEntry* hit = cp::plugins::admit_command(allow, forbidden, line, argv, denial);
        if (!hit) {
          ctx_.emit("COMMAND_REJECTED", json{{"command", line}, {"index", index}, {"reason", denial}}.dump());
          commands_out.push_back({{"command", line}, {"status", "declined"}, {"reason", denial}});
          return finish({{"status", "denied"},
                         {"reason", "command " + cp::plugins::shown(line) + " " + denial},
                         {"commands", commands_out}});
        }
        cp::SpawnOptions opt;
        opt.argv = argv;
        opt.cwd = ctx_.workspace();
        opt.env = cp::plugins::spawn_environment(*hit);
        opt.timeout_ms = static_cast<uint64_t>(command_timeout_) * 1000;
        opt.capture_limit = 8192;
        if (!bundle.empty()) {
          opt.stdout_path = bundle + "/artifacts/tool/" + std::to_string(index) + ".stdout.log";
          opt.stderr_path = bundle + "/artifacts/tool/" + std::to_string(index) + ".stderr.log";
        }
        cp::SpawnResult r = ctx_.spawn(opt);
        std::string status = r.ok()        ? "completed"
                             : r.timed_out ? "timeout"
                             : r.cancelled ? "cancelled"
                                           : "failed";
        json rec{{"command", line},
                 {"argv", argv},
                 {"allowlist_entry", hit->id},
                 {"exit_code", r.exit_code},
                 {"term_signal", r.term_signal},
                 {"status", status},
                 {"duration_ms", r.duration_ms}};
        ctx_.emit("COMMAND_EXECUTED", json{{"command", line},
                                           {"index", index},
                                           {"exit_code", r.exit_code},
                                           {"term_signal", r.term_signal},
                                           {"status", status},
                                           {"duration_ms", r.duration_ms},
                                           {"source", "tool"}}
                                          .dump());
        commands_out.push_back(rec);
        ++index;
        if (r.cancelled)
          return finish(
              {{"status", "cancelled"}, {"reason", "cancelled during: " + line}, {"commands", commands_out}});
        if (r.timed_out)
          return finish(
              {{"status", "timeout"}, {"reason", "command timed out: " + line}, {"commands", commands_out}});
        if (!r.ok() && stop_on_failure_) {
          std::string why = !r.started      ? "did not start"
                            : r.term_signal ? "killed by signal " + std::to_string(r.term_signal)
                                            : "exit " + std::to_string(r.exit_code);
          return finish({{"status", "failed"},
                         {"reason", "command failed (" + why + "): " + line},
                         {"exit_code", r.exit_code},
                         {"commands", commands_out}});
        }
      }
      bool all_ok = true;
      for (const auto& c : commands_out) all_ok = all_ok && c["status"] == "completed";
      finish({{"status", all_ok ? "completed" : "failed"},
              {"reason", all_ok ? "all commands completed" : "a command failed"},
              {"commands", commands_out},
              {"usage", {{"turns", commands_out.size()}}}});
    } catch (const std::exception& e) {
      finish({{"status", "error"},
              {"reason", std::string("tool runner: ") + e.what()},
              {"commands", commands_out}});
    }
  }

  cp::Context ctx_;
  json run_;
  bool stop_on_failure_;
  int command_timeout_;
};

class ToolRunner : public cp::Runner {
 public:
  ToolRunner(cp::Context&, const std::string& config_json) {
    json c = json::parse(config_json);
    stop_on_failure_ = c.value("stop_on_failure", true);
    command_timeout_ = c.value("command_timeout_sec", 3600);
  }
  std::unique_ptr<cp::RunnerRun> start(cp::Context ctx, const std::string& run_json) override {
    json run = json::parse(run_json);
    if (!run.contains("contract") || !run["contract"].contains("runtime_options"))
      throw cp::Error(CP_E_INVALID, "runner input lacks /contract/runtime_options");
    return std::make_unique<ToolRun>(ctx, std::move(run), stop_on_failure_, command_timeout_);
  }

 private:
  bool stop_on_failure_;
  int command_timeout_;
};

}  // namespace

CP_PLUGIN("cp-runner-tool", "0.1.0",
          cp::runner<ToolRunner>("tool", "0.1.0",
                                 "Runs the contract's allowlisted commands in the worktree, without a shell",
                                 kConfigSchema, R"(["spawn", "allowlist"])"))
