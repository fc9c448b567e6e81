// Third-party plugins that cp-host knows nothing about, for tests/integration/out_of_tree_run.sh:
//   oot_policy  a gate declaring CP_FLAG_GATE_POLICY: its verdict is its config's ("pass" or "fail");
//   oot_check   the same gate without the flag;
//   oot_runner  a runner that changes nothing, keeps a file in its state folder and returns fields of its
//               own (oot_review, oot_state_dir) next to the ones cp-host reads.
// No JSON library: the inputs needed here are found by plain string search.
#include <cortexpilot/plugin.hpp>

#include <fstream>
#include <memory>
#include <string>

namespace {

constexpr const char* kGateSchema =
    R"({"type":"object","additionalProperties":false,"properties":{"verdict":{"enum":["pass","fail"]}}})";

class ConfiguredVerdictGate : public cp::Gate {
 public:
  ConfiguredVerdictGate(cp::Context&, const std::string& config_json)
      : fail_(config_json.find("\"fail\"") != std::string::npos) {}

  std::string evaluate(cp::Context&, const std::string&) override {
    if (!fail_) return R"({"verdict":"pass","summary":"configured to pass"})";
    return R"({"verdict":"fail","summary":"configured to fail","next_action":"OOT advice: keep rule 7."})";
  }

 private:
  bool fail_;
};

class OotRun : public cp::RunnerRun {
 public:
  explicit OotRun(const cp::Context& ctx) {
    std::string state = ctx.state_dir();
    if (state.empty()) throw cp::Error(CP_E_UNSUPPORTED, "the host gave this run no state folder");
    std::ofstream(state + "/oot_state.txt") << "kept by oot_runner\n";
    bool written = std::ifstream(state + "/oot_state.txt").good();
    result_ = R"({"status":"completed","reason":"nothing to change","commands":[],)"
              R"("oot_review":{"score":7,"notes":["a field cp-host does not know"]},)"
              // Names a reader could take for the host's judgement: dropped, never passed on.
              R"("verdict":"success","gates":[{"gate_id":"diff_scope","verdict":"pass"}],)"
              R"("oot_state_dir":")" +
              state + R"(","oot_state_written":)" + (written ? "true" : "false") + "}";
  }
  bool wait(uint64_t, std::string& result_json) override {
    result_json = result_;
    return true;
  }
  void cancel(bool) override {}

 private:
  std::string result_;
};

class OotRunner : public cp::Runner {
 public:
  OotRunner(cp::Context&, const std::string&) {}
  std::unique_ptr<cp::RunnerRun> start(cp::Context ctx, const std::string&) override {
    return std::make_unique<OotRun>(ctx);
  }
};

}  // namespace

CP_PLUGIN("oot-plugins", "1.0.0",
          cp::gate<ConfiguredVerdictGate>("oot_policy", "1.0.0", "A third-party policy gate", kGateSchema,
                                          "[]", CP_FLAG_GATE_POLICY),
          cp::gate<ConfiguredVerdictGate>("oot_check", "1.0.0", "The same gate, not a policy gate",
                                          kGateSchema),
          cp::runner<OotRunner>("oot_runner", "1.0.0", "Changes nothing; reports fields of its own"))
