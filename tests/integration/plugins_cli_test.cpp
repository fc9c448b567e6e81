// `cp-host plugins list|inspect` and `cp-host probe` on the shipped plugins and the loader fixtures.
#include "unit/test_support.hpp"

#include <cortexpilot/plugin.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {
cp::test::Ran host(const std::string& plugins, std::vector<std::string> args) {
  std::vector<std::string> argv{CP_HOST_BIN, "--plugins", plugins, "--root", CP_SOURCE_DIR};
  argv.insert(argv.end(), args.begin(), args.end());
  return cp::test::run(argv);
}
}  // namespace

TEST(PluginsCli, ListShowsShippedPluginsAsJson) {
  auto r = host(CP_PLUGIN_DIR, {"plugins", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  std::map<std::string, std::string> kinds;
  for (const auto& p : j["plugins"]) kinds[p["id"]] = p["kind"];
  EXPECT_EQ(kinds["tool"], "runner");
  EXPECT_EQ(kinds["diff_scope"], "gate");
  EXPECT_EQ(kinds["toolchain"], "probe");
  EXPECT_TRUE(j["refused"].empty());
}

TEST(PluginsCli, RefusalsAreListedWithFileAndReasonAndOthersStillLoad) {
  auto r = host(CP_LOADER_FIXTURE_DIR, {"plugins", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  std::set<std::string> loaded;
  for (const auto& p : j["plugins"]) loaded.insert(p["id"]);
  EXPECT_EQ(loaded, (std::set<std::string>{"fixture_good", "fixture_eval_error", "fixture_abi_v1_0"}));
  std::map<std::string, std::string> refused;
  for (const auto& x : j["refused"])
    refused[std::filesystem::path(x["file"].get<std::string>()).filename()] = x["reason"];
  EXPECT_EQ(refused.size(), 8u);
  EXPECT_NE(refused["c_abi_minor.so"].find("newer than this host's " + std::to_string(CP_PLUGIN_ABI_MAJOR) +
                                           "." + std::to_string(CP_PLUGIN_ABI_MINOR)),
            std::string::npos);
  EXPECT_NE(refused["g_duplicate.so"].find("duplicate plugin id"), std::string::npos);
  EXPECT_NE(refused["h_strict.so"].find("config fails the plugin's schema"), std::string::npos);
  EXPECT_NE(refused["j_garbage.so"].find("not a loadable shared library"), std::string::npos);
}

TEST(PluginsCli, TextListPrintsRefusalsOnStderr) {
  auto r = host(CP_LOADER_FIXTURE_DIR, {"plugins", "list"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("fixture_good"), std::string::npos);
  EXPECT_NE(r.err.find("b_abi_major.so: built for ABI major 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("f_no_entry.so: no cp_plugin_entry symbol"), std::string::npos);
}

TEST(PluginsCli, InspectShowsTheConfigSchema) {
  auto r = host(CP_PLUGIN_DIR, {"plugins", "inspect", "diff_scope", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["kind"], "gate");
  // The shipped plugins are built against the current SDK.
  EXPECT_EQ(j["abi"], std::to_string(CP_PLUGIN_ABI_MAJOR) + "." + std::to_string(CP_PLUGIN_ABI_MINOR));
  EXPECT_TRUE(j["config_schema"]["properties"].contains("always_allowed"));
  auto missing = host(CP_PLUGIN_DIR, {"plugins", "inspect", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no plugin 'nope'"), std::string::npos);
}

TEST(PluginsCli, ToolchainProbeFindsGitThroughTheHostSpawnService) {
  auto r = host(CP_PLUGIN_DIR, {"probe", "toolchain", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["toolchain"]["status"], "ok");
  EXPECT_EQ(j["toolchain"]["capabilities"]["git"]["present"], true);
  EXPECT_NE(j["toolchain"]["capabilities"]["git"]["version"].get<std::string>().find("git version"),
            std::string::npos);
}

// One version source: project(cp-host VERSION ...) in CMakeLists.txt; the ABI comes from plugin.h.
TEST(PluginsCli, VersionIsTheProjectVersionWithThePluginAbi) {
  auto r = host(CP_PLUGIN_DIR, {"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "cp-host " CP_PROJECT_VERSION " (plugin ABI " + std::to_string(CP_PLUGIN_ABI_MAJOR) + "." +
                       std::to_string(CP_PLUGIN_ABI_MINOR) + ")\n");
}
