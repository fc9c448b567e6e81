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

namespace {

// `plugins list --json` of a search path, with `env` added: {id: library file} of the loaded plugins, and
// {file name: reason} of the refusals.
struct Listed {
  std::map<std::string, std::string> loaded, refused;
  json raw;
};
Listed list_with(std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<std::string> argv{CP_HOST_BIN, "--root", CP_SOURCE_DIR};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"plugins", "list", "--json"});
  cp::test::Ran r = cp::test::run_env(argv, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Listed l;
  l.raw = json::parse(r.out, nullptr, false);
  if (!l.raw.is_object()) return l;
  for (const auto& p : l.raw["plugins"]) l.loaded[p["id"]] = p["library_path"];
  for (const auto& x : l.raw["refused"]) l.refused[x["file"]] = x["reason"];
  return l;
}

}  // namespace

TEST(PluginsCli, TheSearchPathLoadsEveryFolderInOrderAndTheFirstIdWins) {
  cp::test::TempDir mine;
  // A folder of one's own holding a plugin that is also installed: the earlier folder provides it.
  std::filesystem::copy_file(std::filesystem::path(CP_PLUGIN_DIR) / "gate_policy.so",
                             mine / "gate_policy.so");
  const std::string own = (mine / "gate_policy.so").string();
  const std::string shipped = (std::filesystem::path(CP_PLUGIN_DIR) / "gate_policy.so").string();
  Listed first = list_with({"--plugins", mine.path().string(), "--plugins", CP_PLUGIN_DIR});
  EXPECT_EQ(first.loaded["policy"], own);
  EXPECT_EQ(first.loaded["tool"], (std::filesystem::path(CP_PLUGIN_DIR) / "runner_tool.so").string())
      << "the later folder's other plugins still load";
  ASSERT_TRUE(first.refused.count(shipped)) << first.raw.dump();
  EXPECT_NE(first.refused[shipped].find("shadowed: plugin id 'policy' is provided first by " + own),
            std::string::npos)
      << first.refused[shipped];
  EXPECT_EQ(first.raw["search_path"], json::array({mine.path().string(), CP_PLUGIN_DIR}));
  // The other order: the shipped one wins, the own one is the shadowed.
  Listed second = list_with({"--plugins", std::string(CP_PLUGIN_DIR) + ":" + mine.path().string()});
  EXPECT_EQ(second.loaded["policy"], shipped);
  EXPECT_TRUE(second.refused.count(own)) << second.raw.dump();
  // CP_HOST_PLUGINS is the same path, and --plugins wins over it.
  Listed env = list_with({}, {"CP_HOST_PLUGINS=" + mine.path().string() + ":" + CP_PLUGIN_DIR});
  EXPECT_EQ(env.loaded, first.loaded);
  Listed over =
      list_with({"--plugins", mine.path().string()}, {"CP_HOST_PLUGINS=" + std::string(CP_PLUGIN_DIR)});
  EXPECT_EQ(over.loaded.size(), 1u) << over.raw.dump();
}

TEST(PluginsCli, ByDefaultTheInstalledPluginsThenTheUsersAreSearched) {
  cp::test::TempDir data;
  // A user's third-party plugin in $XDG_DATA_HOME/cp-host/plugins, beside the plugins of this build (the
  // installed ones, found from the binary's folder).
  std::filesystem::create_directories(data / "cp-host/plugins");
  std::filesystem::copy_file(std::filesystem::path(CP_LOADER_FIXTURE_DIR) / "a_good.so",
                             data / "cp-host/plugins/good.so");
  Listed l = list_with({}, {"XDG_DATA_HOME=" + data.path().string()});
  EXPECT_EQ(l.loaded["fixture_good"], (data / "cp-host/plugins/good.so").string()) << l.raw.dump();
  EXPECT_TRUE(l.loaded.count("diff_scope")) << l.raw.dump();
  // An empty entry of CP_HOST_PLUGINS stands for these defaults, after the folders before it.
  cp::test::TempDir mine;
  std::filesystem::copy_file(std::filesystem::path(CP_PLUGIN_DIR) / "gate_policy.so",
                             mine / "gate_policy.so");
  Listed with_env = list_with(
      {}, {"XDG_DATA_HOME=" + data.path().string(), "CP_HOST_PLUGINS=" + mine.path().string() + ":"});
  EXPECT_EQ(with_env.loaded["policy"], (mine / "gate_policy.so").string());
  EXPECT_TRUE(with_env.loaded.count("fixture_good") && with_env.loaded.count("diff_scope"))
      << with_env.raw.dump();
}
