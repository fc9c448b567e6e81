// Log lanes: envelopes that fit log_event.v2, size rotation into gzip files that decompress to valid
// envelopes, the count cap, and errors copied to the error lane.
#include "log/log_lanes.hpp"
#include "core/schema_catalog.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <set>
#include <sstream>

namespace cp::log {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string gunzip(const fs::path& p) {
  gzFile f = gzopen(p.c_str(), "rb");
  EXPECT_NE(f, nullptr) << p;
  std::string out;
  char buf[8192];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

std::vector<json> lines_of(const std::string& text) {
  std::vector<json> v;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) v.push_back(json::parse(line));
  return v;
}

TEST(LogLanes, RotationGzipsValidEnvelopesAndKeepsTheNewest) {
  cp::test::TempDir d;
  open_lanes(d.path(), LaneOptions{4096, 3});
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    Event e;
    e.lane = Lane::governance;
    e.correlation_kind = "run";
    e.run_id = "run-" + std::to_string(i);
    e.component = "test";
    e.message = "event " + std::to_string(i);
    e.fields = {{"i", i}};
    emit(e);
  }
  Event err;
  err.level = Level::error;
  err.lane = Lane::access;
  err.correlation_kind = "request";
  err.correlation_id = "r-1";
  err.message = "it broke";
  emit(err);
  close_lanes();

  fs::path dir = d / ".runtime-cache/logs/governance";
  std::vector<fs::path> gz;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".gz") gz.push_back(e.path());
  std::sort(gz.begin(), gz.end());
  ASSERT_EQ(gz.size(), 3u) << "the count cap keeps three compressed files";
  std::set<int> seen;
  int last = -1;
  for (const auto& f : gz) {
    auto lines = lines_of(gunzip(f));
    EXPECT_FALSE(lines.empty()) << f;
    for (const auto& j : lines) {
      auto v = core::schema("log_event.v2").validate(j);
      EXPECT_TRUE(v.empty()) << j.dump() << " " << (v.empty() ? "" : v[0].pointer + ": " + v[0].message);
      int i = j["fields"]["i"];
      EXPECT_GT(i, last) << "files in name order hold events in time order";
      last = i;
      seen.insert(i);
    }
  }
  for (const auto& j : lines_of(cp::test::read_file(dir / "governance.jsonl"))) {
    EXPECT_GT(j["fields"]["i"].get<int>(), last);
    seen.insert(j["fields"]["i"].get<int>());
  }
  // The newest events are all there, without a gap, up to the last one written.
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(*seen.rbegin(), n - 1);
  EXPECT_EQ(static_cast<int>(seen.size()), n - *seen.begin()) << "no event lost between files";
  EXPECT_GT(*seen.begin(), 0) << "older files were pruned";

  // The error went to its own lane and to `error`, both valid.
  auto access = lines_of(cp::test::read_file(d / ".runtime-cache/logs/access/access.jsonl"));
  auto errors = lines_of(cp::test::read_file(d / ".runtime-cache/logs/error/error.jsonl"));
  ASSERT_EQ(access.size(), 1u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["lane"], "error");
  EXPECT_EQ(errors[0]["fields"]["from_lane"], "access");
  EXPECT_EQ(errors[0]["correlation_id"], "r-1");
  EXPECT_TRUE(core::schema("log_event.v2").valid(errors[0]));
}

TEST(LogLanes, NothingIsWrittenBeforeTheLanesAreOpen) {
  cp::test::TempDir d;
  close_lanes();
  Event e;
  e.message = "nowhere";
  emit(e);
  EXPECT_FALSE(lanes_open());
  EXPECT_FALSE(fs::exists(d / ".runtime-cache"));
  EXPECT_TRUE(core::schema("log_event.v2").valid(json::parse(envelope(e))));
}

}  // namespace
}  // namespace cp::log
