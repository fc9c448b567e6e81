// Gate `acceptance_tests`: runs each of the contract's acceptance tests in the worktree (through the host,
// with its own timeout), keeps stdout/stderr under artifacts/tests/<name>/, and fails when a must_pass test
// does not exit 0. A contract with no tests passes only when the config allows it. A test is `sh -c CMD`, so
// before it starts, CMD (its text and its words) is judged against the contract's forbidden actions with the
// matcher the runners use (plugins/common/forbidden_match.hpp): a forbidden test is not run, and it fails
// the gate whether or not it is must_pass.
#include "../../common/forbidden_match.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "allow_no_tests": {"type": "boolean", "description": "Pass a contract that lists no acceptance tests (default false: fail)."},
    "default_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 86400},
    "shell": {"type": "string", "description": "Shell used to run each cmd (default /bin/sh)."},
    "tail_bytes": {"type": "integer", "minimum": 0, "maximum": 1048576}
  }
})";

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

class AcceptanceTestsGate : public cp::Gate {
 public:
  AcceptanceTestsGate(cp::Context&, const std::string& config_json) {
    json c = json::parse(config_json);
    allow_no_tests_ = c.value("allow_no_tests", false);
    default_timeout_ = c.value("default_timeout_sec", 600);
    shell_ = c.value("shell", std::string("/bin/sh"));
    tail_bytes_ = c.value("tail_bytes", 2048);
  }

  std::string evaluate(cp::Context& ctx, const std::string& input_json) override {
    json in = json::parse(input_json);
    if (!in.contains("workspace") || !in["workspace"].is_string())
      throw cp::Error(CP_E_INVALID, "gate input lacks /workspace");
    std::string ws = in["workspace"].get<std::string>();
    std::string bundle = in.value("bundle_dir", std::string());
    json tests =
        in.contains("contract") ? in["contract"].value("acceptance_tests", json::array()) : json::array();

    cp::plugins::ForbiddenActions forbidden;
    try {
      forbidden = cp::plugins::ForbiddenActions::for_run(in.value("contract", json::object()),
                                                         in.value("policies", json::object()));
    } catch (const std::invalid_argument& e) {
      throw cp::Error(CP_E_INVALID, e.what());
    }

    json diags = json::array();
    json results = json::array();
    size_t failed_required = 0, failed_optional = 0, refused = 0;
    for (const auto& t : tests) {
      if (ctx.cancelled()) throw cp::Error(CP_E_CANCELLED, "run cancelled during acceptance tests");
      std::string name = t.value("name", "test");
      std::string cmd = t.value("cmd", "");
      bool must_pass = t.value("must_pass", true);
      int timeout = t.value("timeout_sec", default_timeout_);
      if (const cp::plugins::ForbiddenRule* hit = forbidden.first_match(cmd, nullptr)) {
        std::string why = cp::plugins::ForbiddenActions::denial(*hit);
        results.push_back({{"name", name},
                           {"cmd", cmd},
                           {"must_pass", must_pass},
                           {"passed", false},
                           {"outcome", "not run: " + why},
                           {"forbidden_action", hit->id}});
        ++refused;
        diags.push_back({{"severity", "error"},
                         {"rule", "forbidden_action"},
                         {"value", hit->id},
                         {"message", "test '" + name + "' (" + cmd + ") was not run: it " + why}});
        continue;
      }
      cp::SpawnOptions opt;
      opt.argv = {shell_, "-c", cmd};
      opt.cwd = ws;
      opt.timeout_ms = static_cast<uint64_t>(timeout) * 1000;
      opt.capture_limit = 64 * 1024;
      if (!bundle.empty()) {
        fs::path dir = fs::path(bundle) / "artifacts" / "tests" / name;
        opt.stdout_path = (dir / "stdout.log").string();
        opt.stderr_path = (dir / "stderr.log").string();
      }
      cp::SpawnResult r = ctx.spawn(opt);
      bool ok = r.ok();
      std::string outcome = !r.started      ? "not started"
                            : r.timed_out   ? "timed out after " + std::to_string(timeout) + " s"
                            : r.cancelled   ? "cancelled"
                            : r.term_signal ? "killed by signal " + std::to_string(r.term_signal)
                                            : "exit " + std::to_string(r.exit_code);
      json res{{"name", name},
               {"cmd", cmd},
               {"must_pass", must_pass},
               {"passed", ok},
               {"outcome", outcome},
               {"exit_code", r.exit_code},
               {"duration_ms", r.duration_ms},
               {"stdout_tail", tail(r.out, tail_bytes_)},
               {"stderr_tail", tail(r.err, tail_bytes_)}};
      if (!opt.stdout_path.empty()) {
        res["stdout_log"] = "artifacts/tests/" + name + "/stdout.log";
        res["stderr_log"] = "artifacts/tests/" + name + "/stderr.log";
      }
      results.push_back(res);
      if (!ok) {
        (must_pass ? failed_required : failed_optional)++;
        std::string t2 = tail(r.err.empty() ? r.out : r.err, 400);
        diags.push_back({{"severity", must_pass ? "error" : "warning"},
                         {"rule", "acceptance_test"},
                         {"message", "test '" + name + "' (" + cmd + "): " + outcome +
                                         (t2.empty() ? "" : "; tail: " + t2)}});
      }
    }
    std::string verdict, summary;
    if (tests.empty()) {
      verdict = allow_no_tests_ ? "pass" : "fail";
      summary = "the contract lists no acceptance tests";
      if (!allow_no_tests_)
        diags.push_back(
            {{"severity", "error"},
             {"rule", "acceptance_test"},
             {"message",
              "no acceptance tests: nothing proves the result (set allow_no_tests to accept this)"}});
    } else if (refused) {
      verdict = "fail";
      summary = std::to_string(refused) + " test(s) not run: they match forbidden actions";
      if (failed_required) summary += "; " + std::to_string(failed_required) + " required test(s) failed";
    } else if (failed_required) {
      verdict = "fail";
      summary = std::to_string(failed_required) + " of " + std::to_string(tests.size()) +
                " required test(s) failed";
    } else if (failed_optional) {
      verdict = "warn";
      summary = std::to_string(failed_optional) + " optional test(s) failed; all required tests passed";
    } else {
      verdict = "pass";
      summary = "all " + std::to_string(tests.size()) + " acceptance test(s) passed";
    }
    json out{{"verdict", verdict},
             {"summary", summary},
             {"diagnostics", diags},
             {"details", {{"tests", results}}}};
    if (verdict == "fail")
      out["next_action"] =
          "An acceptance test failed: read its log tail below (artifacts/tests/), fix the change, and run "
          "again.";
    return out.dump();
  }

 private:
  bool allow_no_tests_;
  int default_timeout_;
  std::string shell_;
  size_t tail_bytes_;
};

}  // namespace

CP_PLUGIN("cp-gate-acceptance-tests", "0.1.0",
          cp::gate<AcceptanceTestsGate>(
              "acceptance_tests", "0.1.0",
              "Runs the contract's acceptance tests in the worktree; must_pass ones must exit 0",
              kConfigSchema, R"(["spawn"])", CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER))
