// The cross-run event feed against a brute-force answer: bundles whose events interleave in time (ties in
// time included), paged newest first with every page size, must give every event exactly once, in (time,
// run, seq) order; filters and the resume order likewise.
#include "serve/event_feed.hpp"
#include "core/clock.hpp"
#include "core/runtime_paths.hpp"
#include "serve/run_catalog.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

namespace cp::serve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Ev {
  long long ts;
  std::string run;
  unsigned long long seq;
  std::string type;
};

bool newer(const Ev& a, const Ev& b) {
  return FeedKey{a.ts, a.run, a.seq}.newer_than(FeedKey{b.ts, b.run, b.seq});
}

class EventFeedTest : public ::testing::Test {
 protected:
  cp::test::TempDir root;
  std::vector<Ev> all;

  void SetUp() override {
    std::mt19937 rng(7);
    const long long base = core::parse_iso_ms("2026-11-01T00:00:00Z");
    for (int r = 0; r < 40; ++r) {
      std::string id = "run-" + std::to_string(100 + r);
      fs::path dir = core::bundle_dir(root.path(), id);
      long long start = base + static_cast<long long>(rng() % 50) * 1000;  // runs overlap heavily
      int n = 1 + static_cast<int>(rng() % 12);
      json m{{"schema_version", 1},
             {"run_id", id},
             {"status", "sealed"},
             {"verdict", "success"},
             {"created_at", core::iso_from_ms(start)},
             {"workflow_id", r % 3 == 0 ? "wf-a" : "wf-b"}};
      cp::test::write_file(dir / "manifest.json", m.dump());
      std::string lines;
      long long ts = start;
      for (int i = 1; i <= n; ++i) {
        ts += static_cast<long long>(rng() % 3) * 500;  // repeated times: ties across runs and within one
        std::string type = i == 1 ? "RUN_CREATED" : (i % 2 ? "RUNNER_STARTED" : "FILE_CHANGED");
        json e{{"seq", i},
               {"ts", core::iso_from_ms(ts)},
               {"run_id", id},
               {"type", type},
               {"payload", json::object()}};
        lines += e.dump() + "\n";
        all.push_back({ts, id, static_cast<unsigned long long>(i), type});
      }
      cp::test::write_file(dir / "events.jsonl", lines);
    }
    std::sort(all.begin(), all.end(), newer);
  }

  std::vector<Ev> page_all(EventFeed& feed, const FeedFilter& f, size_t limit) {
    std::vector<Ev> got;
    std::optional<FeedKey> cursor;
    for (int guard = 0; guard < 10000; ++guard) {
      auto page = feed.newest_first(f, limit, cursor);
      for (const auto& e : page.events)
        got.push_back({core::parse_iso_ms(e["ts"]), e["run_id"], e["seq"], e["type"]});
      if (!page.next) break;
      cursor = page.next;
    }
    return got;
  }
};

bool same(const std::vector<Ev>& a, const std::vector<Ev>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].ts != b[i].ts || a[i].run != b[i].run || a[i].seq != b[i].seq) return false;
  return true;
}

TEST_F(EventFeedTest, EveryPageSizeGivesEveryEventOnceNewestFirst) {
  RunCatalog catalog(root.path());
  catalog.refresh();
  EventFeed feed(root.path(), catalog);
  for (size_t limit : {1u, 2u, 3u, 7u, 50u, 1000u}) {
    auto got = page_all(feed, {}, limit);
    EXPECT_TRUE(same(got, all)) << "page size " << limit << ": " << got.size() << " of " << all.size();
  }
}

TEST_F(EventFeedTest, APageThatSpendsItsReadingBudgetGoesOnFromItsCursor) {
  RunCatalog catalog(root.path());
  catalog.refresh();
  for (size_t budget : {1u, 2u, 5u}) {
    EventFeed feed(root.path(), catalog, budget);  // a fresh cache each time: every run is read anew
    for (size_t limit : {1u, 2u, 3u, 4u, 7u, 1000u}) {
      auto got = page_all(feed, {}, limit);
      EXPECT_TRUE(same(got, all)) << "budget " << budget << ", page size " << limit << ": " << got.size();
    }
  }
  EventFeed feed(root.path(), catalog, 1);
  FeedFilter rare;
  rare.type = "NO_SUCH_TYPE";
  auto first = feed.newest_first(rare, 10, std::nullopt);
  EXPECT_TRUE(first.events.empty());
  EXPECT_TRUE(first.next) << "an empty page that stopped early still says where to go on";
  EXPECT_TRUE(page_all(feed, rare, 10).empty());
}

TEST_F(EventFeedTest, FiltersByTypeRunAndWorkflow) {
  RunCatalog catalog(root.path());
  catalog.refresh();
  EventFeed feed(root.path(), catalog);
  auto want = [&](auto pred) {
    std::vector<Ev> out;
    for (const auto& e : all)
      if (pred(e)) out.push_back(e);
    return out;
  };
  FeedFilter f;
  f.type = "RUNNER_STARTED";
  EXPECT_TRUE(same(page_all(feed, f, 5), want([](const Ev& e) { return e.type == "RUNNER_STARTED"; })));
  f = {};
  f.run_id = "run-107";
  EXPECT_TRUE(same(page_all(feed, f, 4), want([](const Ev& e) { return e.run == "run-107"; })));
  f = {};
  f.workflow_id = "wf-a";
  auto in_a = [](const Ev& e) { return std::stoi(e.run.substr(4)) % 3 == 1; };  // r % 3 == 0 -> id 100 + r
  EXPECT_TRUE(same(page_all(feed, f, 6), want(in_a)));
  f = {};
  f.run_id = "no-such-run";
  EXPECT_TRUE(page_all(feed, f, 10).empty());
}

TEST_F(EventFeedTest, ResumeGivesWhatCameAfterInOrder) {
  RunCatalog catalog(root.path());
  catalog.refresh();
  EventFeed feed(root.path(), catalog);
  const Ev& mid = all[all.size() / 2];
  bool more = true;
  auto after = feed.after({}, FeedKey{mid.ts, mid.run, mid.seq}, 100000, more);
  EXPECT_FALSE(more);
  std::vector<Ev> want(all.begin(), all.begin() + static_cast<long>(all.size() / 2));
  std::reverse(want.begin(), want.end());
  ASSERT_EQ(after.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(after[i].first.run_id, want[i].run);
    EXPECT_EQ(after[i].first.seq, want[i].seq);
  }
  after = feed.after({}, FeedKey{mid.ts, mid.run, mid.seq}, 3, more);
  EXPECT_TRUE(more);
  EXPECT_EQ(after.size(), 3u);
}

TEST(EventFeedKeys, CursorsRoundTripAndForgeriesAreRefused) {
  FeedKey k{1764547200123, "run-1", 42};
  auto back = decode_feed_key(encode_feed_key(k));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ts_ms, k.ts_ms);
  EXPECT_EQ(back->run_id, k.run_id);
  EXPECT_EQ(back->seq, k.seq);
  for (const char* bad : {"", "zz", "abc", "7c7c", "317c727c2d31", "317c727c78"})
    EXPECT_FALSE(decode_feed_key(bad)) << bad;
}

}  // namespace
}  // namespace cp::serve
