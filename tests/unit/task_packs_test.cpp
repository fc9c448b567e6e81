// Task packs (contract/task_packs.hpp): the shipped packs load; a pack breaking its schema or its own rules
// is left out and said with the file and the JSON pointer; a linked pack folder is never followed; a
// planner descriptor needs ABI 1.4; a plugin built against the frozen 1.3 header still loads and runs.
#include "contract/task_packs.hpp"
#include "gates/verdict.hpp"
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A pack with one field and one step, valid as written; tests break one thing at a time.
json small_pack(const std::string& name) {
  return json::parse(R"({
    "schema_version": 1, "name": ")" +
                     name + R"(", "title": "Small", "description": "A small pack.",
    "fields": [{"name": "target", "description": "What.", "type": "path", "required": true, "question": "Which path?"}],
    "chain": {"title": "Do {{target}}", "summary": "Work on {{target}}.",
              "steps": [{"step_id": "work", "kind": "task", "role": "WORKER", "title": "Work", "runner": "tool",
                         "pack": "low", "instruction": "Change {{target}}.", "allowed_paths": ["{{target}}"]}]}
  })");
}

void put_pack(const fs::path& root, const std::string& folder, const std::string& text) {
  cp::test::write_file(root / "packs/tasks" / folder / "pack.json", text);
}

const cp::contract::Diagnostic* find_diag(const std::vector<cp::contract::Diagnostic>& list,
                                          const std::string& pointer) {
  for (const auto& d : list)
    if (d.pointer == pointer) return &d;
  return nullptr;
}

}  // namespace

TEST(TaskPacks, TheShippedPacksLoadWithoutADiagnostic) {
  auto set = cp::contract::load_task_packs(CP_SOURCE_DIR);
  for (const auto& d : set.diagnostics) ADD_FAILURE() << cp::contract::diagnostic_line(d);
  for (const char* name : {"fix-bug", "add-tests", "dependency-bump", "docs-update", "page-brief"}) {
    const auto* p = set.find(name);
    ASSERT_NE(p, nullptr) << name;
    json s = cp::contract::task_pack_summary(*p, CP_SOURCE_DIR);
    EXPECT_EQ(s["path"], std::string("packs/tasks/") + name + "/pack.json");
    EXPECT_FALSE(s["fields"].empty()) << name;
    for (const auto& f : s["fields"]) EXPECT_FALSE(f["question"].get<std::string>().empty()) << name;
  }
}

TEST(TaskPacks, APackBreakingItsSchemaIsLeftOutWithThePointer) {
  cp::test::TempDir root;
  put_pack(root.path(), "good", small_pack("good").dump(2));
  json bad = small_pack("bad");
  bad["fields"][0]["type"] = "folder";  // not a field type
  put_pack(root.path(), "bad", bad.dump(2));
  put_pack(root.path(), "broken", "{\"schema_version\": 1, \"name\": ");

  auto set = cp::contract::load_task_packs(root.path());
  ASSERT_EQ(set.packs.size(), 1u);
  EXPECT_EQ(set.packs[0].name, "good");
  const auto* d = find_diag(set.diagnostics, "/fields/0/type");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->file, "packs/tasks/bad/pack.json");
  EXPECT_EQ(d->rule, "enum");
  EXPECT_GT(d->line, 1);
  EXPECT_NE(d->expected.find("paths"), std::string::npos) << d->expected;
  bool json_error = false;
  for (const auto& x : set.diagnostics)
    json_error |= x.file == "packs/tasks/broken/pack.json" && x.rule == "json";
  EXPECT_TRUE(json_error);
}

TEST(TaskPacks, WhatTheSchemaCannotSayIsCheckedToo) {
  cp::test::TempDir root;
  json named = small_pack("other-name");  // the folder says "named"
  put_pack(root.path(), "named", named.dump());
  json undeclared = small_pack("undeclared");
  undeclared["chain"]["steps"][0]["instruction"] = "Change {{target}} and {{nothing}}.";
  put_pack(root.path(), "undeclared", undeclared.dump());
  json pattern = small_pack("pattern");
  pattern["fields"][0]["pattern"] = "(unclosed";
  put_pack(root.path(), "pattern", pattern.dump());
  json def = small_pack("default");
  def["fields"][0]["default"] = "../outside";
  put_pack(root.path(), "default", def.dump());

  auto set = cp::contract::load_task_packs(root.path());
  EXPECT_TRUE(set.packs.empty());
  auto diag_of = [&](const std::string& folder) -> const cp::contract::Diagnostic* {
    for (const auto& d : set.diagnostics)
      if (d.file == "packs/tasks/" + folder + "/pack.json") return &d;
    return nullptr;
  };
  ASSERT_NE(diag_of("named"), nullptr);
  EXPECT_EQ(diag_of("named")->pointer, "/name");
  EXPECT_EQ(diag_of("named")->rule, "xref:folder");
  ASSERT_NE(diag_of("undeclared"), nullptr);
  EXPECT_EQ(diag_of("undeclared")->pointer, "/chain/steps/0/instruction");
  EXPECT_NE(diag_of("undeclared")->message.find("{{nothing}}"), std::string::npos);
  ASSERT_NE(diag_of("pattern"), nullptr);
  EXPECT_EQ(diag_of("pattern")->pointer, "/fields/0/pattern");
  ASSERT_NE(diag_of("default"), nullptr);
  EXPECT_EQ(diag_of("default")->pointer, "/fields/0/default");
  EXPECT_NE(diag_of("default")->message.find(".."), std::string::npos);
}

TEST(TaskPacks, ALinkedPackFolderOrFileIsNeverFollowed) {
  cp::test::TempDir root, elsewhere;
  cp::test::write_file(elsewhere / "linked/pack.json", small_pack("linked").dump());
  cp::test::write_file(elsewhere / "file.json", small_pack("filelink").dump());
  fs::create_directories(root / "packs/tasks/filelink");
  fs::create_directory_symlink(elsewhere / "linked", root / "packs/tasks/linked");
  fs::create_symlink(elsewhere / "file.json", root / "packs/tasks/filelink/pack.json");

  auto set = cp::contract::load_task_packs(root.path());
  EXPECT_TRUE(set.packs.empty());
  ASSERT_EQ(set.diagnostics.size(), 2u);
  std::vector<cp::contract::Diagnostic> why;
  EXPECT_FALSE(cp::contract::load_task_pack(root.path(), "linked", why));
  EXPECT_FALSE(cp::contract::load_task_pack(root.path(), "../packs", why));
  EXPECT_EQ(why.back().rule, "name");
}

TEST(TaskPacks, FieldValuesAreCheckedByTypeChoicesAndPattern) {
  std::string why;
  json path{{"type", "path"}};
  EXPECT_TRUE(cp::contract::field_value_ok(path, "src/app/", why));
  EXPECT_FALSE(cp::contract::field_value_ok(path, "/etc/passwd", why));
  EXPECT_FALSE(cp::contract::field_value_ok(path, "src/../../x", why));
  json paths{{"type", "paths"}};
  EXPECT_TRUE(cp::contract::field_value_ok(paths, json::array({"a/", "b.md"}), why));
  EXPECT_FALSE(cp::contract::field_value_ok(paths, "a/", why));
  json version{{"type", "string"}, {"pattern", "[0-9.]+"}};
  EXPECT_TRUE(cp::contract::field_value_ok(version, "1.2.3", why));
  EXPECT_FALSE(cp::contract::field_value_ok(version, "1.2.3; rm -rf /", why));  // the whole text must match
  json choice{{"type", "choice"}, {"choices", {"low", "high"}}};
  EXPECT_TRUE(cp::contract::field_value_ok(choice, "low", why));
  EXPECT_FALSE(cp::contract::field_value_ok(choice, "medium", why));
  json line{{"type", "command"}};
  EXPECT_FALSE(cp::contract::field_value_ok(line, "make\nrm -rf /", why));
}

TEST(PlannerAbi, APlannerLoadsAndOneClaimingABI1_3IsRefused) {
  cp::plugin::Registry r;
  r.load_file(std::string(CP_PLANNER_FIXTURE_DIR) + "/planner_good.so");
  r.load_file(std::string(CP_PLANNER_FIXTURE_DIR) + "/planner_claims_1_3.so");
  const auto* p = r.find("planner_good");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->kind, cp::plugin::Kind::planner);
  EXPECT_EQ(cp::plugin::kind_name(p->kind), "planner");
  EXPECT_EQ(p->abi_minor, 4u);
  EXPECT_EQ(p->isolation, "isolated");  // third-party: not named cp-*
  EXPECT_EQ(r.find("planner_claims_1_3"), nullptr);
  ASSERT_EQ(r.refusals().size(), 1u);
  EXPECT_NE(r.refusals()[0].reason.find("kind planner (5) was added in ABI 1.4"), std::string::npos)
      << r.refusals()[0].reason;
  // In process, through the instance: the planner's answer comes back as written.
  std::string err;
  auto inst = cp::plugin::Instance::create(*p, err);
  ASSERT_TRUE(inst) << err;
  cp::plugin::CallContext ctx(p->id);
  auto out = inst->propose_plan(ctx, "{}");
  ASSERT_TRUE(out.ok()) << out.error;
  EXPECT_EQ(json::parse(out.output)["status"], "no_match");
  EXPECT_EQ(inst->evaluate(ctx, "{}").status, CP_E_UNSUPPORTED);  // a planner is not a gate
}

TEST(AbiCompatibility, PluginBuiltAgainstTheFrozen1_3HeaderLoadsAndRunsInThisHost) {
  ASSERT_GT(CP_PLUGIN_ABI_MINOR, 3) << "this test pins an older-minor plugin against the current host";
  cp::plugin::Registry r;
  r.load_file(std::string(CP_ABI_COMPAT_DIR) + "/v1_3_policy.so");
  const auto* info = r.find("fixture_abi_v1_3");
  ASSERT_NE(info, nullptr) << (r.refusals().empty() ? "" : r.refusals()[0].reason);
  EXPECT_EQ(info->abi_minor, 3u);
  EXPECT_EQ(info->flags, CP_FLAG_GATE_POLICY);  // a 1.3 gate's declared flags are its own
  std::string err;
  auto inst = cp::plugin::Instance::create(*info, err);
  ASSERT_TRUE(inst) << err;
  cp::plugin::CallContext ctx(info->id);
  auto out = inst->evaluate(ctx, "{}");
  EXPECT_TRUE(out.ok()) << out.error;
  EXPECT_EQ(cp::gates::verdict_from(out)["verdict"], "pass");
}
