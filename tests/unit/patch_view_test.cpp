// The patch view (control/patch_view.hpp): git's unified diff read as files, hunks and counts, on patches
// git itself wrote (the real repository below) and on the odd shapes a run can make git print.
#include "control/patch_view.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

namespace cp::control {
namespace {

using cp::test::sh;
using nlohmann::json;

const json* file_named(const json& view, const std::string& path) {
  for (const auto& f : view["files"])
    if (f["path"] == path) return &f;
  return nullptr;
}

TEST(PatchView, ReadsWhatGitWritesForEveryKindOfChange) {
  cp::test::TempDir d;
  auto repo = d / "r";
  cp::test::write_file(repo / "keep.txt", "one\ntwo\nthree\n");
  cp::test::write_file(repo / "gone.txt", "bye\n");
  cp::test::write_file(repo / "moved from.txt", "a long enough line that a rename is found\nsecond line\n");
  cp::test::write_file(repo / "tool.sh", "echo\n");
  ASSERT_EQ(
      sh("git init -q && git add -A && git -c user.name=t -c user.email=t@l commit -q -m i", repo).exit_code,
      0);
  cp::test::write_file(repo / "keep.txt", "one\nTWO\nthree\nfour");  // no newline at the end
  cp::test::write_file(repo / "new \"file\".txt", "fresh\n");
  ASSERT_EQ(sh("rm gone.txt && git mv 'moved from.txt' 'moved to.txt' && chmod +x tool.sh && "
               "printf 'x\\000y' > blob.bin && git add -A",
               repo)
                .exit_code,
            0);
  cp::test::Ran diff = sh("git diff --cached --binary -M HEAD", repo);
  ASSERT_EQ(diff.exit_code, 0);
  json v = parse_patch(diff.out);

  const json* keep = file_named(v, "keep.txt");
  ASSERT_NE(keep, nullptr) << v.dump(2);
  EXPECT_EQ((*keep)["status"], "modified");
  EXPECT_EQ((*keep)["added"], 2);
  EXPECT_EQ((*keep)["removed"], 1);
  ASSERT_EQ((*keep)["hunks"].size(), 1u);
  const json& h = (*keep)["hunks"][0];
  EXPECT_EQ(h["old_start"], 1);
  EXPECT_EQ(h["old_lines"], 3);
  EXPECT_EQ(h["new_lines"], 4);
  EXPECT_EQ(h["lines"].back(), "\\ No newline at end of file");

  const json* added = file_named(v, "new \"file\".txt");
  ASSERT_NE(added, nullptr) << "a C-quoted name is read back as written\n" << v.dump(2);
  EXPECT_EQ((*added)["status"], "added");
  EXPECT_EQ((*added)["added"], 1);

  const json* gone = file_named(v, "gone.txt");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ((*gone)["status"], "deleted");
  EXPECT_EQ((*gone)["removed"], 1);

  const json* moved = file_named(v, "moved to.txt");
  ASSERT_NE(moved, nullptr) << v.dump(2);
  EXPECT_EQ((*moved)["status"], "renamed");
  EXPECT_EQ((*moved)["old_path"], "moved from.txt");
  EXPECT_EQ((*moved)["similarity"], 100);

  const json* tool = file_named(v, "tool.sh");
  ASSERT_NE(tool, nullptr);
  EXPECT_EQ((*tool)["old_mode"], "100644");
  EXPECT_EQ((*tool)["new_mode"], "100755");
  EXPECT_TRUE((*tool)["hunks"].empty());

  const json* blob = file_named(v, "blob.bin");
  ASSERT_NE(blob, nullptr);
  EXPECT_TRUE((*blob)["binary"]);
  EXPECT_EQ((*blob)["status"], "added");

  EXPECT_EQ(v["totals"]["files"], 6);
  EXPECT_EQ(v["totals"]["binary"], 1);
  EXPECT_EQ(v["totals"]["added"], 3);
  EXPECT_EQ(v["totals"]["removed"], 2);
  EXPECT_FALSE(v["truncated"]);
}

TEST(PatchView, HunkLinesThatLookLikeHeadersStayInTheirHunk) {
  // A '+' line holding "diff --git" or "+++" text is content, not the start of another file.
  std::string p =
      "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1,3 @@\n-old\n+diff --git a/evil b/evil\n++++ b/evil\n"
      "+@@ -1 +1 @@\n";
  json v = parse_patch(p);
  ASSERT_EQ(v["files"].size(), 1u) << v.dump(2);
  EXPECT_EQ(v["files"][0]["path"], "x");
  EXPECT_EQ(v["files"][0]["added"], 3);
  EXPECT_EQ(v["files"][0]["removed"], 1);
}

TEST(PatchView, LimitsKeepTheCountsWhole) {
  std::string p;
  for (int f = 0; f < 5; ++f) {
    p += "diff --git a/f" + std::to_string(f) + " b/f" + std::to_string(f) +
         "\n--- a/f\n+++ b/f\n@@ -0,0 +1,4 @@\n";
    for (int i = 0; i < 4; ++i) p += "+line\n";
  }
  PatchLimits lim;
  lim.max_files = 3;
  lim.max_lines = 6;
  json v = parse_patch(p, lim);
  EXPECT_TRUE(v["truncated"]);
  EXPECT_EQ(v["files"].size(), 3u);
  EXPECT_EQ(v["totals"]["files"], 5);
  EXPECT_EQ(v["totals"]["added"], 20) << "the counts cover the whole patch";
  EXPECT_EQ(v["files"][0]["hunks"][0]["lines"].size(), 4u);
  EXPECT_EQ(v["files"][1]["hunks"][0]["lines"].size(), 2u);
  EXPECT_TRUE(v["files"][1]["hunks"][0]["lines_omitted"]);
  EXPECT_EQ(v["files"][1]["added"], 4);
}

TEST(PatchView, GarbageIsNotAFileAndNothingThrows) {
  EXPECT_EQ(parse_patch("")["files"].size(), 0u);
  EXPECT_EQ(parse_patch("hello\n@@ -1 +1 @@\n+x\n")["files"].size(), 0u);
  json v = parse_patch("diff --git a/x b/x\n@@ -a,b +c @@\n+x\n@@ -1,99999999999999999999 +1 @@\n");
  ASSERT_EQ(v["files"].size(), 1u);
  EXPECT_EQ(v["files"][0]["hunks"].size(), 0u);
  EXPECT_EQ(unquote_git_path("\"a\\303\\244\\tb\\\"\""), "a\xc3\xa4\tb\"");
  EXPECT_EQ(unquote_git_path("\"unterminated"), "");
  EXPECT_EQ(unquote_git_path("plain"), "plain");
}

}  // namespace
}  // namespace cp::control
