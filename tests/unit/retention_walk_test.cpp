// The lanes' tree walk: sizes without following symlinks, and files or folders vanishing mid-walk.
#include "../../plugins/common/retention_walk.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace cp::plugins {
namespace {

namespace fs = std::filesystem;

struct HookReset {
  ~HookReset() { walk_hook() = nullptr; }
};

TEST(RetentionWalk, CountsContentNotFoldersAndNeverFollowsLinks) {
  cp::test::TempDir d;
  cp::test::write_file(d / "e/a", std::string(100, 'a'));
  cp::test::write_file(d / "e/sub/b", std::string(50, 'b'));
  cp::test::write_file(d / "outside/huge", std::string(100000, 'x'));
  fs::create_directory_symlink(d / "outside", d / "e/link");
  TreeSum s = measure((d / "e").string());
  EXPECT_EQ(s.files, 3u);  // a, sub/b, link
  EXPECT_EQ(s.bytes, 150u + fs::read_symlink(d / "e/link").string().size());
  EXPECT_TRUE(s.errors.empty());
  EXPECT_FALSE(s.vanished);
}

TEST(RetentionWalk, EntriesVanishingMidWalkAreGoneNotErrors) {
  cp::test::TempDir d;
  for (int i = 0; i < 20; ++i) cp::test::write_file(d / "e" / ("f" + std::to_string(i)), "x");
  for (int i = 0; i < 5; ++i) cp::test::write_file(d / "e/dir" / ("g" + std::to_string(i)), "y");
  HookReset reset;
  int removed = 0;
  // Whatever is visited first removes everything else, files and the folder: the walk must shrug.
  walk_hook() = [&](const std::string& path) {
    if (removed++ == 1) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(d / "e", ec))
        if (e.path().string() != path) fs::remove_all(e.path(), ec);
    }
  };
  TreeSum s = measure((d / "e").string());
  EXPECT_TRUE(s.errors.empty()) << s.errors.front();
  EXPECT_LE(s.files, 1u);
  walk_hook() = nullptr;
  fs::remove_all(d / "e");
  EXPECT_TRUE(measure((d / "e").string()).vanished);
}

}  // namespace
}  // namespace cp::plugins
