#include "core/json_schema.hpp"
#include "core/schema_catalog.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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
