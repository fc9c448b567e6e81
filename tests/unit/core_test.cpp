// The ground floor: one clock, and one file naming every path under the runtime root.
#include "core/clock.hpp"
#include "core/runtime_paths.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

TEST(CoreClock, IsoTextRoundTripsToTheMillisecond) {
  EXPECT_EQ(cp::core::iso_from_ms(0), "1970-01-01T00:00:00.000Z");
  int64_t t = 1764582896123;
  EXPECT_EQ(cp::core::parse_iso_ms(cp::core::iso_from_ms(t)), t);
  EXPECT_EQ(cp::core::parse_iso_ms("2026-11-25T10:00:00Z"),
            cp::core::parse_iso_ms("2026-11-25T10:00:00.000Z"));
  EXPECT_EQ(cp::core::parse_iso_ms("2026-11-25T10:00:00.5Z") - cp::core::parse_iso_ms("2026-11-25T10:00:00Z"),
            500);
  for (const char* bad :
       {"", "yesterday", "2026-11-25 10:00:00", "2026-11-25T10:00:00", "2026-11-25T10:00:00Zx"})
    EXPECT_EQ(cp::core::parse_iso_ms(bad), -1) << bad;
  int64_t now = cp::core::now_ms();
  int64_t read_back = cp::core::parse_iso_ms(cp::core::now_utc_iso());
  EXPECT_GE(read_back, now);
  EXPECT_LT(read_back - now, 60'000);
}

TEST(CoreRuntimePaths, EveryPathIsUnderTheRuntimeRoot) {
  fs::path root = "/project";
  fs::path rt = cp::core::runtime_dir(root);
  EXPECT_EQ(rt, fs::path("/project/.runtime-cache/cortexpilot"));
  for (const fs::path& p :
       {cp::core::runs_dir(root), cp::core::live_marker(root, "r"), cp::core::awaiting_marker(root, "r"),
        cp::core::incoming_dir(root), cp::core::worktree_dir(root, "r"), cp::core::agent_home_dir(root, "r"),
        cp::core::run_tmp_dir(root, "r"), cp::core::queue_log(root), cp::core::queue_contracts_dir(root),
        cp::core::queue_logs_dir(root), cp::core::intake_dir(root), cp::core::host_reports_dir(root),
        cp::core::workflow_cases_dir(root), cp::core::serve_info_file(root), cp::core::serve_lock_file(root)})
    EXPECT_EQ(p.string().rfind(rt.string() + "/", 0), 0u) << p;
  EXPECT_EQ(cp::core::logs_dir(root), fs::path("/project/.runtime-cache/logs"));
  EXPECT_EQ(cp::core::cache_dir(root), fs::path("/project/.runtime-cache/cache"));
}

// The layout has one home: no other host source spells the runtime folder's name.
TEST(CoreRuntimePaths, NoOtherHostFileSpellsTheRuntimeFolder) {
  fs::path src = fs::path(CP_SOURCE_DIR) / "host/src";
  std::vector<std::string> offenders;
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    fs::path rel = e.path().lexically_relative(src);
    if (rel.begin()->string() == "core") continue;
    std::ifstream in(e.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      // Comments and help texts may name the folder for a reader; code may not build a path from it.
      auto at = line.find("\".runtime-cache\"");
      if (at != std::string::npos) offenders.push_back(rel.string() + ":" + std::to_string(n));
    }
  }
  EXPECT_TRUE(offenders.empty()) << offenders.size() << " file(s) build a runtime path by hand, first "
                                 << (offenders.empty() ? "" : offenders.front());
}

}  // namespace
