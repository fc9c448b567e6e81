// Runner `claude`: runs Claude Code headless (`claude -p … --output-format stream-json --verbose`) in the
// run's worktree and normalises its stream: Bash tool calls become COMMAND_EXECUTED (with the tool result's
// error flag), Edit/Write/MultiEdit become FILE_CHANGED, mcp__* tools MCP_TOOL_CALLED, the final `result`
// line decides the verdict and carries the cost. Raw lines are kept in artifacts/claude/events.jsonl.
#include "../../common/stream_runner.hpp"
#include "claude_parser.hpp"

#include <filesystem>
#include <map>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "binary": {"type": "string", "minLength": 1, "description": "The claude executable (default: claude, from PATH)."},
    "permission_mode": {"type": "string", "enum": ["default", "acceptEdits", "plan", "bypassPermissions"],
                        "description": "Passed as --permission-mode (default acceptEdits)."},
    "extra_args": {"type": "array", "items": {"type": "string"}}
  }
})";

class ClaudeRun : public cp::plugins::StreamRun {
 public:
  ClaudeRun(cp::Context ctx, json run, const json& config)
      : StreamRun(ctx, std::move(run), "claude"), config_(config) {
    fs::create_directories(fs::path(ctx_.bundle_dir()) / "artifacts/claude");
    launch();
  }

 protected:
  std::vector<std::string> argv() override {
    const json& c = run_["contract"];
    std::vector<std::string> a{config_.value("binary", "claude"),
                               "-p",
                               cp::plugins::build_prompt(c, run_.value("role_prompt", json())),
                               "--output-format",
                               "stream-json",
                               "--verbose",
                               "--permission-mode",
                               config_.value("permission_mode", "acceptEdits")};
    if (c["runtime_options"].contains("model")) a.insert(a.end(), {"--model", c["runtime_options"]["model"]});
    // Claude enforces these itself too; cp-host still enforces them from the stream.
    if (budgets_.max_turns > 0) a.insert(a.end(), {"--max-turns", std::to_string(budgets_.max_turns)});
    if (budgets_.max_cost_usd > 0)
      a.insert(a.end(), {"--max-budget-usd", json(budgets_.max_cost_usd).dump()});
    if (run_.contains("resume") && run_["resume"].contains("thread_id"))
      a.insert(a.end(), {"--resume", run_["resume"]["thread_id"].get<std::string>()});
    for (const auto& x : config_.value("extra_args", json::array())) a.push_back(x);
    for (const auto& x : c["runtime_options"].value("runner_args", json::array())) a.push_back(x);
    return a;
  }
  std::string raw_log_path() override { return ctx_.bundle_dir() + "/artifacts/claude/events.jsonl"; }

  cp::plugins::StreamParser& parser() override { return parser_; }

 private:
  json config_;
  cp::plugins::ClaudeParser parser_{state_, sinks()};
};

using ClaudeRunner = cp::plugins::ConfiguredRunner<ClaudeRun>;

}  // namespace

CP_PLUGIN("cp-runner-claude", "0.1.0",
          cp::runner<ClaudeRunner>(
              "claude", "0.1.0",
              "Runs Claude Code headless (stream-json) in the worktree and normalises its stream",
              kConfigSchema, R"(["spawn", "stream", "resume", "budgets"])"))
