// Kept answers of sealed runs: built once, served as kept bytes while the bundle is unchanged, and built
// again the moment anything in the bundle changes — a write deep in the tree, a new folder, a removed
// file, a chmod — or, for a change inotify cannot see (a write through a hard link from outside the
// bundle), at the next fingerprint check.
#include "serve/sealed_answers.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace cp::serve {
namespace {

namespace fs = std::filesystem;

struct Counted {
  int builds = 0;
  bool settled = true;
  std::pair<CachedAnswer, bool> operator()() {
    ++builds;
    return {{"body " + std::to_string(builds), {{"X-Build", std::to_string(builds)}}}, settled};
  }
};

TEST(SealedAnswers, AKeptAnswerIsServedUntilAnythingInTheBundleChanges) {
  cp::test::TempDir d;
  fs::path b = d / "run-1";
  fs::create_directories(b / "artifacts/deep/er");
  cp::test::write_file(b / "manifest.json", "{}");
  cp::test::write_file(b / "artifacts/deep/er/file.txt", "a");
  SealedAnswers answers;
  Counted c;
  auto get = [&] { return answers.get("run-1", b, std::ref(c)).body; };
  EXPECT_EQ(get(), "body 1");
  EXPECT_EQ(get(), "body 1");
  EXPECT_EQ(c.builds, 1);
  EXPECT_EQ(answers.size(), 1u);

  // A write three folders down: the next answer is built anew.
  { std::ofstream(b / "artifacts/deep/er/file.txt", std::ios::app) << "b"; }
  EXPECT_EQ(get(), "body 2");
  EXPECT_EQ(get(), "body 2");
  // A new folder, then a file in it (the new folder is watched once the answer is built again).
  fs::create_directories(b / "reports/new");
  EXPECT_EQ(get(), "body 3");
  cp::test::write_file(b / "reports/new/x.json", "{}");
  EXPECT_EQ(get(), "body 4");
  // A removed file, a chmod, a rename.
  fs::remove(b / "reports/new/x.json");
  EXPECT_EQ(get(), "body 5");
  ::chmod((b / "manifest.json").c_str(), 0600);
  EXPECT_EQ(get(), "body 6");
  fs::rename(b / "manifest.json", b / "manifest2.json");
  EXPECT_EQ(get(), "body 7");
  EXPECT_EQ(get(), "body 7");
  EXPECT_EQ(c.builds, 7);
}

TEST(SealedAnswers, AWriteThroughAnOutsideHardLinkIsCaughtByTheFingerprintCheck) {
  cp::test::TempDir d;
  fs::path b = d / "run-1";
  fs::create_directories(b / "reports");
  cp::test::write_file(b / "reports/r.json", "{}");
  ASSERT_EQ(::link((b / "reports/r.json").c_str(), (d / "outside").c_str()), 0);
  SealedAnswers answers;
  Counted c;
  auto get = [&] { return answers.get("run-1", b, std::ref(c)).body; };
  EXPECT_EQ(get(), "body 1");
  { std::ofstream(d / "outside", std::ios::app) << "tampered"; }
  // inotify on the bundle's folders did not see it; the fingerprint check does, within kRecheck.
  std::this_thread::sleep_for(SealedAnswers::kRecheck + std::chrono::milliseconds(100));
  EXPECT_EQ(get(), "body 2");
  EXPECT_EQ(get(), "body 2");
}

TEST(SealedAnswers, UnsettledAnswersAreNeverKept) {
  cp::test::TempDir d;
  fs::path b = d / "run-1";
  fs::create_directories(b);
  SealedAnswers answers;
  Counted c;
  c.settled = false;
  EXPECT_EQ(answers.get("run-1", b, std::ref(c)).body, "body 1");
  EXPECT_EQ(answers.get("run-1", b, std::ref(c)).body, "body 2");
  EXPECT_EQ(answers.size(), 0u);
  // Bounded: past its size, answers are dropped, and each one dropped is built again when asked.
  SealedAnswers small(2);
  Counted k;
  for (int i = 0; i < 3; ++i) {
    fs::create_directories(d / ("r" + std::to_string(i)));
    small.get("r" + std::to_string(i), d / ("r" + std::to_string(i)), std::ref(k));
  }
  EXPECT_EQ(small.size(), 2u);
  EXPECT_EQ(k.builds, 3);
}

}  // namespace
}  // namespace cp::serve
