// Task packs as an operator meets them: `cp-host validate` checks packs/tasks/*/pack.json and names the file,
// line and JSON pointer of what is wrong; `cp-host task-packs list|show` and GET /api/task-packs(/{name})
// of a real serve list the packs with their fields, and say which pack is invalid and why.
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

namespace cp::test {
namespace {

// The fix-bug pack with field #1's type broken: a pack that breaks its schema.
void write_broken_pack(const RunProject& p) {
  json pack = json::parse(read_file(p.dir / "packs/tasks/fix-bug/pack.json"));
  pack["name"] = "broken";
  pack["fields"][1]["type"] = "shell";
  write_file(p.dir / "packs/tasks/broken/pack.json", pack.dump(2));
}

TEST(TaskPacksCli, ValidateChecksTaskPacksAndPointsAtTheBrokenField) {
  RunProject p;
  Ran ok = host({"--root", p.dir.path().string(), "validate", (p.dir / "packs").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;

  write_broken_pack(p);
  Ran bad = host(
      {"--root", p.dir.path().string(), "validate", (p.dir / "packs/tasks").string(), "--format", "json"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  json rep = json::parse(bad.out, nullptr, false);
  ASSERT_TRUE(rep.is_object()) << bad.out;
  bool found = false;
  for (const auto& d : rep["diagnostics"]) {
    if (d["pointer"] != "/fields/1/type") continue;
    found = true;
    EXPECT_NE(d["file"].get<std::string>().find("packs/tasks/broken/pack.json"), std::string::npos)
        << d.dump();
    EXPECT_EQ(d["schema"], "task_pack");
    EXPECT_EQ(d["rule"], "enum");
    EXPECT_GT(d["line"].get<int>(), 1);
  }
  EXPECT_TRUE(found) << bad.out;

  // What the schema cannot say: a template naming no field, a runner that is not loaded.
  json pack = json::parse(read_file(p.dir / "packs/tasks/fix-bug/pack.json"));
  pack["chain"]["steps"][2]["runner"] = "nosuch";
  pack["chain"]["steps"][0]["title"] = "Fix {{nothing}}";
  write_file(p.dir / "packs/tasks/fix-bug/pack.json", pack.dump(2));
  Ran refs = host({"--root", p.dir.path().string(), "validate", (p.dir / "packs/tasks/fix-bug").string()});
  EXPECT_EQ(refs.exit_code, 1);
  EXPECT_NE(refs.out.find("/chain/steps/2/runner: no runner plugin 'nosuch' is loaded"), std::string::npos)
      << refs.out;
  EXPECT_NE(refs.out.find("/chain/steps/0/title: {{nothing}} names no field"), std::string::npos) << refs.out;
}

TEST(TaskPacksCli, ListAndShowWithTheirJson) {
  RunProject p;
  Ran list = host({"--root", p.dir.path().string(), "task-packs", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json l = json::parse(list.out);
  EXPECT_EQ(l["count"], 5);
  EXPECT_TRUE(l["invalid"].empty());
  Ran text = host({"--root", p.dir.path().string(), "task-packs", "list"});
  EXPECT_NE(text.out.find("dependency-bump"), std::string::npos) << text.out;

  Ran show = host({"--root", p.dir.path().string(), "task-packs", "show", "page-brief", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  json s = json::parse(show.out);
  EXPECT_EQ(s["name"], "page-brief");
  EXPECT_EQ(s["pack"]["chain"]["steps"][0]["runner"], "browser");
  std::set<std::string> fields;
  for (const auto& f : s["fields"]) fields.insert(f["name"]);
  EXPECT_EQ(fields, (std::set<std::string>{"url", "origin", "focus", "governance"}));

  EXPECT_EQ(host({"--root", p.dir.path().string(), "task-packs", "show", "nosuch"}).exit_code, 1);
  EXPECT_EQ(host({"--root", p.dir.path().string(), "task-packs", "show", "../policies"}).exit_code, 2);

  write_broken_pack(p);
  Ran with_bad = host({"--root", p.dir.path().string(), "task-packs", "list", "--json"});
  EXPECT_EQ(with_bad.exit_code, 1);
  json wb = json::parse(with_bad.out);
  EXPECT_EQ(wb["count"], 5);
  ASSERT_FALSE(wb["invalid"].empty());
  EXPECT_EQ(wb["invalid"][0]["pointer"], "/fields/1/type");
}

TEST(TaskPacksApi, ListOneAndTheirErrors) {
  RunProject p;
  write_broken_pack(p);
  std::string viewer = add_token(p, "viewer", "viewer");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
  ASSERT_NE(serve.port(), 0) << serve.output();

  auto r = http(serve.port(), "GET", "/api/task-packs", bearer(viewer));
  ASSERT_EQ(r.status, 200) << r.body;
  json all = json::parse(r.body);
  EXPECT_EQ(all["count"], 5);
  json fix;
  for (const auto& pk : all["task_packs"])
    if (pk["name"] == "fix-bug") fix = pk;
  ASSERT_TRUE(fix.is_object()) << r.body;
  EXPECT_EQ(fix["path"], "packs/tasks/fix-bug/pack.json");
  bool asked = false;
  for (const auto& f : fix["fields"])
    if (f["name"] == "test_command") {
      asked = true;
      EXPECT_TRUE(f["required"].get<bool>());
      EXPECT_FALSE(f["question"].get<std::string>().empty());
    }
  EXPECT_TRUE(asked);
  ASSERT_EQ(all["invalid"].size(), 1u);
  EXPECT_EQ(all["invalid"][0]["file"], "packs/tasks/broken/pack.json");

  auto one = http(serve.port(), "GET", "/api/task-packs/fix-bug", bearer(viewer));
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(json::parse(one.body)["pack"]["name"], "fix-bug");

  auto missing = http(serve.port(), "GET", "/api/task-packs/nosuch", bearer(viewer));
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], "not_found");
  auto bad_name = http(serve.port(), "GET", "/api/task-packs/Bad_Name", bearer(viewer));
  EXPECT_EQ(bad_name.status, 400) << bad_name.body;
  auto invalid = http(serve.port(), "GET", "/api/task-packs/broken", bearer(viewer));
  EXPECT_EQ(invalid.status, 422) << invalid.body;
  json inv = json::parse(invalid.body);
  EXPECT_EQ(inv["error"]["code"], "invalid_task_pack");
  EXPECT_EQ(inv["error"]["details"]["diagnostics"][0]["pointer"], "/fields/1/type");
  EXPECT_EQ(http(serve.port(), "GET", "/api/task-packs").status, 401);
  auto unknown_query = http(serve.port(), "GET", "/api/task-packs?kind=x", bearer(viewer));
  EXPECT_EQ(unknown_query.status, 400) << unknown_query.body;
}

}  // namespace
}  // namespace cp::test
