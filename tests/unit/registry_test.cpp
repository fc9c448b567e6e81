#include "plugin/registry.hpp"
#include "gates/verdict.hpp"
#include "plugin/instance.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace cp::plugin;

namespace {

std::string reason_for(const Registry& r, const std::string& file_stem) {
  for (const auto& x : r.refusals())
    if (x.file.stem() == file_stem) return x.reason;
  return "";
}

PluginPolicy strict_policy(const std::string& config) {
  PluginPolicy p;
  p.plugins["fixture_strict"].config_json = config;
  p.plugins["fixture_strict"].has_config = true;
  return p;
}

}  // namespace

TEST(Registry, LoadsGoodPluginsAndRefusesEachBrokenOneWithItsReason) {
  Registry r;
  r.load_directory(CP_LOADER_FIXTURE_DIR, strict_policy(R"({"level": "high"})"));

  ASSERT_NE(r.find("fixture_good"), nullptr);
  EXPECT_EQ(r.find("fixture_good")->library_path.stem(), "a_good");  // the first of the duplicates wins
  ASSERT_NE(r.find("fixture_eval_error"), nullptr);

  EXPECT_NE(reason_for(r, "b_abi_major").find("ABI major 2"), std::string::npos)
      << reason_for(r, "b_abi_major");
  EXPECT_NE(reason_for(r, "c_abi_minor").find("newer than this host"), std::string::npos);
  EXPECT_NE(reason_for(r, "d_short_manifest").find("struct_size 12"), std::string::npos);
  EXPECT_NE(reason_for(r, "e_short_vtable").find("function table struct_size 8"), std::string::npos);
  EXPECT_NE(reason_for(r, "f_no_entry").find("no cp_plugin_entry symbol"), std::string::npos);
  EXPECT_NE(reason_for(r, "g_duplicate").find("duplicate plugin id 'fixture_good'"), std::string::npos);
  EXPECT_NE(reason_for(r, "h_strict").find("config fails the plugin's schema at /level (type)"),
            std::string::npos)
      << reason_for(r, "h_strict");
  EXPECT_NE(reason_for(r, "j_garbage").find("not a loadable shared library"), std::string::npos);

  EXPECT_EQ(r.find("fixture_major"), nullptr);
  EXPECT_EQ(r.find("fixture_minor"), nullptr);
  EXPECT_EQ(r.find("fixture_strict"), nullptr);
  EXPECT_EQ(r.plugins().size(), 3u);  // good, eval_error, and the ABI 1.0 plugin
  EXPECT_EQ(r.refusals().size(), 8u);
}

TEST(Registry, StrictPluginLoadsWithAValidConfigAndMissingConfigIsRefused) {
  Registry ok;
  ok.load_file(std::string(CP_LOADER_FIXTURE_DIR) + "/h_strict.so", strict_policy(R"({"level": 3})"));
  ASSERT_NE(ok.find("fixture_strict"), nullptr);
  EXPECT_EQ(ok.find("fixture_strict")->config_json, R"({"level": 3})");

  Registry missing;  // default config {} lacks the required "level"
  missing.load_file(std::string(CP_LOADER_FIXTURE_DIR) + "/h_strict.so");
  EXPECT_EQ(missing.find("fixture_strict"), nullptr);
  ASSERT_EQ(missing.refusals().size(), 1u);
  EXPECT_NE(missing.refusals()[0].reason.find("required"), std::string::npos);
}

TEST(Registry, DisabledPluginIsSkippedSilently) {
  PluginPolicy p;
  p.plugins["fixture_good"].enabled = false;
  Registry r;
  r.load_file(std::string(CP_LOADER_FIXTURE_DIR) + "/a_good.so", p);
  EXPECT_EQ(r.find("fixture_good"), nullptr);
  EXPECT_TRUE(r.refusals().empty());
}

TEST(Registry, MissingDirectoryIsARefusal) {
  Registry r;
  r.load_directory("/nonexistent/cp-host/plugins");
  EXPECT_TRUE(r.plugins().empty());
  ASSERT_EQ(r.refusals().size(), 1u);
}

TEST(Registry, ShippedPluginsAllLoad) {
  Registry r;
  r.load_directory(CP_PLUGIN_DIR);
  EXPECT_TRUE(r.refusals().empty()) << r.refusals()[0].reason;
  for (const char* id :
       {"required_outputs", "diff_scope", "acceptance_tests", "forbidden_actions", "toolchain", "tool"})
    EXPECT_NE(r.find(id), nullptr) << id;
  EXPECT_EQ(r.find("tool")->kind, Kind::runner);
  EXPECT_EQ(r.find("toolchain")->kind, Kind::probe);
}

TEST(Registry, PolicyFileIsReadWithPrecisePointers) {
  cp::test::TempDir d;
  cp::test::write_file(d / "plugins.json",
                       R"({"policy":"plugins","plugins":{"a":{"config":{"x":1},"isolation":"isolated"}}})");
  auto p = PluginPolicy::load(d / "plugins.json");
  EXPECT_EQ(p.plugins["a"].config_json, R"({"x":1})");
  EXPECT_EQ(p.plugins["a"].isolation, "isolated");
  cp::test::write_file(d / "bad.json", R"({"policy":"plugins","plugins":[]})");
  EXPECT_THROW(PluginPolicy::load(d / "bad.json"), std::runtime_error);
  EXPECT_THROW(PluginPolicy::load(d / "missing.json"), std::runtime_error);
}

TEST(GateVerdict, AFailingGateCallIsAnErrorVerdictNeverAPass) {
  Registry r;
  r.load_directory(CP_LOADER_FIXTURE_DIR);
  const auto* info = r.find("fixture_eval_error");
  ASSERT_NE(info, nullptr);
  std::string err;
  auto inst = Instance::create(*info, err);
  ASSERT_TRUE(inst) << err;
  CallContext ctx(info->id);
  auto out = inst->evaluate(ctx, "{}");
  EXPECT_EQ(out.status, CP_E_FAILED);
  EXPECT_EQ(out.error, "fixture failure");
  auto v = cp::gates::verdict_from(out);
  EXPECT_EQ(v["verdict"], "error");
  EXPECT_NE(v["summary"].get<std::string>().find("fixture failure"), std::string::npos);
}

TEST(GateVerdict, MalformedOrOffSchemaOutputIsAnError) {
  CallOutcome not_json{CP_OK, "pass", ""};
  EXPECT_EQ(cp::gates::verdict_from(not_json)["verdict"], "error");
  CallOutcome wrong_value{CP_OK, R"({"verdict":"passed","summary":"x"})", ""};
  EXPECT_EQ(cp::gates::verdict_from(wrong_value)["verdict"], "error");
  CallOutcome no_summary{CP_OK, R"({"verdict":"pass"})", ""};
  EXPECT_EQ(cp::gates::verdict_from(no_summary)["verdict"], "error");
  CallOutcome deep{CP_OK,
                   "{\"verdict\":\"pass\",\"summary\":\"x\",\"details\":{\"a\":" + std::string(100000, '[') +
                       std::string(100000, ']') + "}}",
                   ""};
  EXPECT_EQ(cp::gates::verdict_from(deep)["verdict"], "error");
  CallOutcome good{CP_OK, R"({"verdict":"pass","summary":"fine"})", ""};
  EXPECT_EQ(cp::gates::verdict_from(good)["verdict"], "pass");
}

TEST(AbiCompatibility, PluginBuiltAgainstTheFrozen1_0HeaderLoadsAndRunsInThisHost) {
  ASSERT_GT(CP_PLUGIN_ABI_MINOR, 0) << "this test pins an older-minor plugin against the current host";
  Registry r;
  r.load_directory(CP_LOADER_FIXTURE_DIR);
  const auto* info = r.find("fixture_abi_v1_0");
  ASSERT_NE(info, nullptr) << reason_for(r, "k_abi_v1_0");
  EXPECT_EQ(info->abi_major, 1u);
  EXPECT_EQ(info->abi_minor, 0u);
  std::string err;
  auto inst = Instance::create(*info, err);
  ASSERT_TRUE(inst) << err;
  CallContext ctx(info->id);
  auto out = inst->evaluate(ctx, "{}");
  EXPECT_TRUE(out.ok()) << out.error;
  EXPECT_EQ(cp::gates::verdict_from(out)["verdict"], "pass");
  // And the other direction: a plugin claiming a newer minor than the host is refused, saying so.
  EXPECT_NE(reason_for(r, "c_abi_minor").find("newer than this host"), std::string::npos);
}

TEST(AbiCompatibility, PluginBuiltAgainstTheFrozen1_1HeaderLoadsAndRunsInThisHost) {
  ASSERT_GT(CP_PLUGIN_ABI_MINOR, 1) << "this test pins an older-minor plugin against the current host";
  Registry r;
  r.load_file(std::string(CP_ABI_COMPAT_DIR) + "/v1_1_other.so");
  const auto* info = r.find("fixture_abi_v1_1");
  ASSERT_NE(info, nullptr) << reason_for(r, "v1_1_other");
  EXPECT_EQ(info->abi_minor, 1u);
  std::string err;
  auto inst = Instance::create(*info, err);
  ASSERT_TRUE(inst) << err;
  CallContext ctx(info->id);
  ctx.set_state_dir("/nowhere");  // a 1.2 context field the 1.1 plugin never reads
  auto out = inst->evaluate(ctx, "{}");
  EXPECT_TRUE(out.ok()) << out.error;
  EXPECT_EQ(cp::gates::verdict_from(out)["verdict"], "pass");
}

// ABI 1.0/1.1 had no gate flags: whatever such a gate holds in `flags` is ignored, and the gates those hosts
// knew by id keep exactly that treatment, nothing more.
TEST(AbiCompatibility, OldGatesGetTheFlagsTheirHostsGaveByIdAndTheirOwnBitsAreIgnored) {
  Registry r;
  for (const char* f : {"v1_0_diff_scope", "v1_1_acceptance_tests", "v1_1_forbidden_actions", "v1_1_other"})
    r.load_file(std::string(CP_ABI_COMPAT_DIR) + "/" + f + ".so");
  ASSERT_TRUE(r.refusals().empty()) << r.refusals().front().reason;
  EXPECT_EQ(r.find("diff_scope")->flags, CP_FLAG_GATE_POLICY);  // built with 0x2: ignored
  EXPECT_EQ(r.find("forbidden_actions")->flags, CP_FLAG_GATE_POLICY);
  EXPECT_EQ(r.find("acceptance_tests")->flags, CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER);
  EXPECT_EQ(r.find("fixture_abi_v1_1")->flags, 0u);  // built with 0x3: ignored
}

TEST(Registry, A1_2GateCarriesItsDeclaredFlagsWhateverItsIdAndUndefinedBitsAreRefused) {
  Registry r;
  for (const char* f : {"v1_2_flags", "v1_2_named_like_old", "v1_2_bad_flags"})
    r.load_file(std::string(CP_ABI_COMPAT_DIR) + "/" + f + ".so");
  ASSERT_NE(r.find("fixture_flags"), nullptr) << reason_for(r, "v1_2_flags");
  EXPECT_EQ(r.find("fixture_flags")->flags, CP_FLAG_GATE_POLICY | CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER);
  ASSERT_NE(r.find("diff_scope"), nullptr) << reason_for(r, "v1_2_named_like_old");
  EXPECT_EQ(r.find("diff_scope")->flags, 0u);  // a 1.2 gate is not a policy gate by its name
  EXPECT_EQ(r.find("fixture_bad_flags"), nullptr);
  EXPECT_NE(reason_for(r, "v1_2_bad_flags").find("gate flags 0x104 are not defined"), std::string::npos)
      << reason_for(r, "v1_2_bad_flags");
  auto j = to_json(*r.find("fixture_flags"), false);
  EXPECT_EQ(j["flags"], nlohmann::json::parse(R"(["policy", "needs_completed_runner"])"));
}

TEST(Registry, ShippedGatesDeclareTheirFlags) {
  Registry r;
  r.load_directory(CP_PLUGIN_DIR);
  auto flags = [&](const char* id) {
    const auto* p = r.find(id);
    EXPECT_NE(p, nullptr) << id;
    EXPECT_GE(p ? p->abi_minor : 0u, 2u) << id;  // built for 1.2 or later: its flags count
    return p ? p->flags : 0xffu;
  };
  EXPECT_EQ(flags("diff_scope"), CP_FLAG_GATE_POLICY);
  EXPECT_EQ(flags("forbidden_actions"), CP_FLAG_GATE_POLICY);
  EXPECT_EQ(flags("policy"), CP_FLAG_GATE_POLICY);
  EXPECT_EQ(flags("acceptance_tests"), CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER);
  EXPECT_EQ(flags("required_outputs"), 0u);
}
