// IsolatedPlugin directly: a worker that keeps crashing is restarted for each call, then its circuit opens
// and calls fail at once without starting a worker; a healthy worker serves many calls.
#include "plugin/isolated_plugin.hpp"
#include "gates/verdict.hpp"
#include "plugin/registry.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>

using namespace cp::plugin;

namespace {
PluginInfo load(const std::string& file, const std::string& id) {
  Registry reg;
  reg.load_file(file);
  const PluginInfo* info = reg.find(id);
  EXPECT_NE(info, nullptr) << file;
  return info ? *info : PluginInfo{};  // the copy keeps the library mapped
}
}  // namespace

TEST(IsolatedPlugin, RepeatedCrashesOpenTheCircuit) {
  const auto info = load(std::string(CP_MISBEHAVING_DIR) + "/bad_abort.so", "bad_abort");
  IsolatedPlugin plugin(info, {});
  CallContext ctx("bad_abort");
  for (int i = 0; i < IsolatedPlugin::kBreakerThreshold; ++i) {
    auto out = plugin.evaluate(ctx, "{}", std::chrono::seconds(10));
    EXPECT_FALSE(out.ok());
    EXPECT_NE(out.error.find("crashed during the call"), std::string::npos) << out.error;
    EXPECT_EQ(cp::gates::verdict_from(out)["verdict"], "error");
  }
  auto t0 = std::chrono::steady_clock::now();
  auto open = plugin.evaluate(ctx, "{}", std::chrono::seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));  // no worker started
  EXPECT_NE(open.error.find("circuit open"), std::string::npos) << open.error;
}

TEST(IsolatedPlugin, AHealthyWorkerServesManyCalls) {
  const auto info = load(std::string(CP_LOADER_FIXTURE_DIR) + "/a_good.so", "fixture_good");
  IsolatedPlugin plugin(info, {});
  CallContext ctx("fixture_good");
  for (int i = 0; i < 50; ++i) {
    auto out = plugin.evaluate(ctx, "{}", std::chrono::seconds(10));
    ASSERT_TRUE(out.ok()) << out.error;
    EXPECT_EQ(cp::gates::verdict_from(out)["verdict"], "pass");
  }
  EXPECT_GT(plugin.last_start_time().count(), 0);
}
