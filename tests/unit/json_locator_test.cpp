#include "core/json_locator.hpp"

#include <gtest/gtest.h>

using cp::core::line_of_pointer;

TEST(JsonLocator, FindsNestedMembersAndArrayItems) {
  const char* text = R"({
  "a": 1,
  "b": {
    "c": [10,
          20,
          {"d": true}]
  },
  "e/f": "x"
})";
  EXPECT_EQ(line_of_pointer(text, ""), 1);
  EXPECT_EQ(line_of_pointer(text, "/a"), 2);
  EXPECT_EQ(line_of_pointer(text, "/b"), 3);
  EXPECT_EQ(line_of_pointer(text, "/b/c/0"), 4);
  EXPECT_EQ(line_of_pointer(text, "/b/c/1"), 5);
  EXPECT_EQ(line_of_pointer(text, "/b/c/2/d"), 6);
  EXPECT_EQ(line_of_pointer(text, "/e~1f"), 8);
}

TEST(JsonLocator, MissingMemberFallsBackToDeepestAncestor) {
  const char* text = "{\n \"b\": {\n  \"x\": 1\n }\n}";
  EXPECT_EQ(line_of_pointer(text, "/b/missing"), 2);
  EXPECT_EQ(line_of_pointer(text, "/nope/deeper"), 1);
}

TEST(JsonLocator, StringsWithNewlineEscapesAndBracesDoNotConfuseIt) {
  const char* text = "{\"s\": \"a}\\n]\\\"{\",\n\"t\": 2}";
  EXPECT_EQ(line_of_pointer(text, "/t"), 2);
}
