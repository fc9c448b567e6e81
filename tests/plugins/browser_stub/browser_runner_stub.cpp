// A stand-in for the `browser` runner in a tree that does not build plugins/runners/browser/: it declares
// what the real runner declares to the host before a run (its id, the chromium probe), so validation and
// `cp-host intake preview` of browser contracts can be tested. Started, it runs nothing and says so.
#include <cortexpilot/plugin.hpp>

#include <memory>
#include <string>

namespace {

class StubRun : public cp::RunnerRun {
 public:
  bool wait(uint64_t, std::string& result) override {
    result =
        R"({"status":"error","reason":"test stub: the browser runner is not built in this tree","commands":[]})";
    return true;
  }
  void cancel(bool) override {}
};

class StubRunner : public cp::Runner {
 public:
  StubRunner(cp::Context&, const std::string&) {}
  std::unique_ptr<cp::RunnerRun> start(cp::Context, const std::string&) override {
    return std::make_unique<StubRun>();
  }
};

}  // namespace

CP_PLUGIN("cp-test-browser-runner-stub", "0.0.1",
          cp::runner<StubRunner>("browser", "0.0.1", "Test stand-in for the browser runner",
                                 R"({"type":"object"})", R"(["spawn","cdp","probe:chromium"])"))
