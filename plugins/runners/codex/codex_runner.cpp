// Runner `codex`: runs `codex exec --json` in the run's worktree and turns its JSONL stream into run
// events. The verdict comes from the last terminal turn event (turn.completed / turn.failed) together with
// the exit status and any signal, never from a lone `error` line; a stream without a terminal event is
// incomplete. Raw lines are kept verbatim in artifacts/codex/events.jsonl. Formats: the current one
// (`type`, `agent_message`), the Sep 2025 ones (`item_type`, `assistant_message`, `session.created`) and the
// legacy `{id, msg:{type}}` protocol.
#include "../../common/stream_runner.hpp"
#include "codex_parser.hpp"

#include <filesystem>
#include <fstream>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "binary": {"type": "string", "minLength": 1, "description": "The codex executable (default: codex, from PATH)."},
    "extra_args": {"type": "array", "items": {"type": "string"}, "description": "Added before the prompt, e.g. [\"-c\", \"model_reasoning_effort=\\\"high\\\"\"]."},
    "inherit_auth": {"type": "boolean", "description": "Copy auth.json from $CODEX_HOME or ~/.codex into the run's CODEX_HOME (default true)."},
    "price_per_mtok": {"type": "object", "additionalProperties": false,
      "properties": {"input": {"type": "number", "minimum": 0}, "cached_input": {"type": "number", "minimum": 0}, "output": {"type": "number", "minimum": 0}},
      "description": "USD per million tokens, to turn usage into cost (codex reports none)."}
  }
})";

// The earlier run's CODEX_HOME was written by that run's agent: only its folders and regular files are
// copied, never through a symbolic link (one to a secret would be copied in as a readable file) and never
// a FIFO or device (which would block or read forever).
void copy_home(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(from, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    fs::path dest = to / fs::relative(it->path(), from);
    if (fs::is_directory(st)) {
      fs::create_directories(dest, ec);
    } else if (fs::is_regular_file(st)) {
      fs::copy_file(it->path(), dest, fs::copy_options::overwrite_existing, ec);
    }
    ec.clear();
  }
}

class CodexRun : public cp::plugins::StreamRun {
 public:
  CodexRun(cp::Context ctx, json run, const json& config)
      : StreamRun(ctx, std::move(run), "codex"), config_(config) {
    fs::path bundle = ctx_.bundle_dir();
    fs::create_directories(bundle / "artifacts/codex");
    // CODEX_HOME is the run's runner state folder, which the host makes for every run: sessions of
    // different runs never mix, and a resumed run starts from a copy of the folder its thread was
    // recorded in.
    home_ = ctx_.state_dir();
    if (home_.empty())
      throw cp::Error(CP_E_UNSUPPORTED, "codex runner: the host gave the run no state folder");
    fs::create_directories(home_);
    if (run_.contains("resume") && run_["resume"].contains("state_dir")) {
      fs::path from = run_["resume"]["state_dir"].get<std::string>();
      if (fs::is_directory(from)) copy_home(from, home_);
    }
    if (config_.value("inherit_auth", true)) {
      const char* env_home = std::getenv("CODEX_HOME");
      const char* user_home = std::getenv("HOME");
      fs::path src = env_home ? fs::path(env_home) : user_home ? fs::path(user_home) / ".codex" : fs::path();
      std::error_code ec;
      if (!src.empty() && fs::exists(src / "auth.json", ec) && !fs::exists(home_ / "auth.json", ec))
        fs::copy_file(src / "auth.json", home_ / "auth.json", ec);
    }
    launch();
  }

 protected:
  std::vector<std::string> argv() override {
    const json& c = run_["contract"];
    std::string fs_mode = c.contains("tool_permissions")
                              ? c["tool_permissions"].value("filesystem", "workspace-write")
                              : "workspace-write";
    std::vector<std::string> a{
        config_.value("binary", "codex"), "exec", "--json", "-C", ctx_.workspace(), "-s", fs_mode,
        "--skip-git-repo-check"};
    if (c["runtime_options"].contains("model")) a.insert(a.end(), {"-m", c["runtime_options"]["model"]});
    bool net = c.contains("tool_permissions") && c["tool_permissions"].value("network", "deny") == "allow";
    a.insert(a.end(),
             {"-c", std::string("sandbox_workspace_write.network_access=") + (net ? "true" : "false")});
    for (const auto& x : config_.value("extra_args", json::array())) a.push_back(x);
    for (const auto& x : c["runtime_options"].value("runner_args", json::array())) a.push_back(x);
    // The agent writes only into the run's scratch folder: the rest of the bundle is out of its sandbox.
    a.insert(a.end(), {"-o", ctx_.bundle_dir() + "/artifacts/scratch/codex_last_message.txt"});
    // Flags go before `resume`: both older and newer codex builds accept that order.
    if (run_.contains("resume") && run_["resume"].contains("thread_id"))
      a.insert(a.end(), {"resume", run_["resume"]["thread_id"].get<std::string>()});
    a.push_back("--");
    a.push_back(cp::plugins::build_prompt(c, run_.value("role_prompt", json())));
    return a;
  }
  std::vector<std::string> env() override { return {"CODEX_HOME=" + home_.string()}; }
  std::string raw_log_path() override { return ctx_.bundle_dir() + "/artifacts/codex/events.jsonl"; }

  cp::plugins::StreamParser& parser() override { return parser_; }

 private:
  json config_;
  fs::path home_;
  cp::plugins::CodexParser parser_{state_, sinks(), config_.value("price_per_mtok", json::object())};
};

using CodexRunner = cp::plugins::ConfiguredRunner<CodexRun>;

}  // namespace

CP_PLUGIN("cp-runner-codex", "0.1.0",
          cp::runner<CodexRunner>("codex", "0.1.0",
                                  "Runs `codex exec --json` in the worktree and normalises its stream",
                                  kConfigSchema, R"(["spawn", "stream", "resume", "budgets"])"))
