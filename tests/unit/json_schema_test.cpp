#include "core/json_schema.hpp"
#include "core/schema_catalog.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>

using cp::core::JsonSchema;
using nlohmann::json;

namespace {
JsonSchema compile(const char* s) {
  return JsonSchema::compile(json::parse(s));
}
}  // namespace

TEST(JsonSchema, ReportsPointerRuleAndExpectation) {
  auto s = compile(R"({"type":"object","required":["n"],"additionalProperties":false,
                       "properties":{"n":{"type":"integer","minimum":1},"k":{"enum":["a","b"]}}})");
  auto v = s.validate(json::parse(R"({"n": 0, "k": "z", "x": 1})"));
  ASSERT_EQ(v.size(), 3u);
  std::map<std::string, std::string> by_pointer;
  for (const auto& x : v) by_pointer[x.pointer] = x.rule;
  EXPECT_EQ(by_pointer["/n"], "minimum");
  EXPECT_EQ(by_pointer["/k"], "enum");
  EXPECT_EQ(by_pointer["/x"], "additionalProperties");
  for (const auto& x : v) {
    if (x.rule == "enum") {
      EXPECT_NE(x.expected.find("[\"a\",\"b\"]"), std::string::npos);
    }
  }
}

TEST(JsonSchema, MissingPropertyPointsAtIt) {
  auto s = compile(R"({"type":"object","properties":{"o":{"type":"object","required":["id"],
                       "properties":{"id":{"type":"string","description":"the id"}}}}})");
  auto v = s.validate(json::parse(R"({"o": {}})"));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pointer, "/o/id");
  EXPECT_EQ(v[0].rule, "required");
  EXPECT_NE(v[0].expected.find("the id"), std::string::npos);
}

TEST(JsonSchema, ValidDocumentHasNoViolations) {
  auto s = compile(R"({"type":"array","items":{"type":"string"}})");
  EXPECT_TRUE(s.valid(json::parse(R"(["a","b"])")));
  auto v = s.validate(json::parse(R"(["a", 2])"));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pointer, "/1");
  EXPECT_EQ(v[0].rule, "type");
}

TEST(JsonSchema, MalformedSchemaIsRefused) {
  EXPECT_THROW(compile(R"({"type":"object","properties":{"a":{"minimum":"x"}}})"), std::invalid_argument);
}

TEST(SchemaCatalog, EveryShippedSchemaCompiles) {
  auto names = cp::core::schema_names();
  EXPECT_GE(names.size(), 11u);
  for (const auto& n : names) EXPECT_NO_THROW((void)cp::core::schema(n)) << n;
  EXPECT_THROW((void)cp::core::schema("no_such_schema"), std::out_of_range);
}

// Hostile strings meet "pattern" everywhere (a planner's plan, a plugin's answer, an API body): a long one
// once overflowed the stack of std::regex's backtracking matcher and killed the process. Each string here is
// far beyond where that happened (about 100 KB); the answer must be a violation, and this process alive.
TEST(JsonSchema, ALongStringAgainstARepeatingPatternIsJudgedNotACrash) {
  const std::string long_text(1u << 20, 'a');
  auto s = compile(R"({"type":"object","properties":{
      "id": {"type":"string","maxLength":64,"pattern":"^[a-z][a-z0-9_.-]*$"},
      "path": {"type":"string","pattern":"^(?!/)(?!.*(^|/)\\.\\.(/|$)).*$"}},
      "propertyNames": {"pattern": "^[a-z]*$"}})");
  auto v = s.validate(json{{"id", long_text}, {"path", long_text}});
  ASSERT_EQ(v.size(), 1u);  // only the maxLength: both patterns match
  EXPECT_EQ(v[0].pointer, "/id");
  EXPECT_EQ(v[0].rule, "maxLength");
  EXPECT_FALSE(s.valid(json{{"path", "../" + long_text}}));
  EXPECT_FALSE(s.valid(json{{long_text + "!", 1}}));  // a key checked by propertyNames
  EXPECT_TRUE(s.valid(json{{long_text, 1}}));
  // A shipped schema: a plan whose allowed path and runner are megabytes long is refused with pointers.
  json step{{"step_id", "a"},
            {"kind", "task"},
            {"role", "WORKER"},
            {"title", "t"},
            {"runner", long_text},
            {"instruction", "i"},
            {"allowed_paths", {long_text}},
            {"pack", long_text}};
  json plan{{"schema_version", 1}, {"title", "t"}, {"summary", "s"}, {"steps", {step}}};
  std::set<std::string> where;
  for (const auto& x : cp::core::schema("plan_bundle").validate(plan)) where.insert(x.pointer + " " + x.rule);
  EXPECT_TRUE(where.count("/steps/0/runner pattern")) << where.size();
  EXPECT_TRUE(where.count("/steps/0/allowed_paths/0 maxLength")) << where.size();
}

// A document of short strings has its patterns matched by backtracking (faster), one holding a long string
// breadth-first; the answers are the same, a pattern with a repeated group included.
TEST(JsonSchema, PatternsJudgeShortAndLongDocumentsAlike) {
  auto s = compile(R"({"type":"object","properties":{
      "id": {"type":"string","pattern":"^[a-z][a-z0-9_.-]*$"},
      "path": {"type":"string","pattern":"^(?!/)(?!.*(^|/)\\.\\.(/|$)).*$"},
      "pairs": {"type":"string","pattern":"^(ab)+$"}}})");
  const std::string long_text(300, 'x');
  for (const json& extra : {json(nullptr), json(long_text)}) {
    auto doc = [&](json d) {
      if (!extra.is_null()) d["other"] = extra;
      return d;
    };
    EXPECT_TRUE(s.valid(doc({{"id", "a-1.b_c"}, {"path", "src/a/b"}, {"pairs", "ababab"}})));
    EXPECT_FALSE(s.valid(doc({{"id", "1a"}})));
    EXPECT_FALSE(s.valid(doc({{"path", "src/../etc"}})));
    EXPECT_FALSE(s.valid(doc({{"path", "/etc"}})));
    EXPECT_FALSE(s.valid(doc({{"pairs", "aba"}})));
    auto v = s.validate(doc({{"id", "Bad"}, {"pairs", "abab"}}));
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].pointer, "/id");
    EXPECT_EQ(v[0].rule, "pattern");
  }
}
