// The queue: state derived from operations, eligibility and SLA, and queue.jsonl on disk shared by two
// stores (as serve and the CLI share it), with torn tails and compaction.
#include "queue/queue_state.hpp"
#include "queue/queue_store.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace cp::queue {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json enq(const std::string& id, int prio = 5, json extra = json::object()) {
  json op{{"op", "enqueued"}, {"item_id", id}, {"ts", "2026-01-01T00:00:00.000Z"}, {"task_id", "t"},
          {"pack", "low"},    {"repo", "/r"},  {"contract_path", "/c.json"},       {"priority", prio}};
  op.update(extra);
  return op;
}
json op(const std::string& kind, const std::string& id, json extra = json::object()) {
  json o{{"op", kind}, {"item_id", id}, {"ts", "2026-01-01T00:00:01.000Z"}};
  o.update(extra);
  return o;
}

TEST(QueueState, LifeOfAnItemWithARetry) {
  QueueState st;
  ASSERT_TRUE(st.apply(enq("a", 5, {{"max_retries", 1}, {"backoff_sec", 10}})));
  EXPECT_FALSE(st.apply(enq("a"))) << "a duplicate enqueue is refused";
  EXPECT_FALSE(st.apply(op("started", "a", {{"attempt", 1}, {"run_id", "r1"}}))) << "start without a claim";
  ASSERT_TRUE(st.apply(op("claimed", "a", {{"attempt", 1}})));
  EXPECT_FALSE(st.apply(op("claimed", "a", {{"attempt", 2}}))) << "claimed twice";
  ASSERT_TRUE(st.apply(op("started", "a", {{"attempt", 1}, {"run_id", "r1"}})));
  EXPECT_FALSE(st.apply(op("finished", "a", {{"attempt", 2}, {"status", "error"}}))) << "wrong attempt";
  ASSERT_TRUE(st.apply(op("finished", "a", {{"attempt", 1}, {"status", "timeout"}})));
  const QueueItem* it = st.find("a");
  EXPECT_TRUE(it->terminal());
  EXPECT_TRUE(it->should_retry("timeout"));
  EXPECT_FALSE(it->should_retry("failure")) << "a failing test is not retried";
  EXPECT_DOUBLE_EQ(it->next_backoff_sec(), 10);
  ASSERT_TRUE(st.apply(op("retried", "a", {{"attempt", 2}, {"run_after", "2026-01-01T00:00:11.000Z"}})));
  EXPECT_EQ(st.find("a")->state, ItemState::queued);
  ASSERT_TRUE(st.apply(op("claimed", "a", {{"attempt", 2}})));
  ASSERT_TRUE(st.apply(op("started", "a", {{"attempt", 2}, {"run_id", "r2"}})));
  ASSERT_TRUE(st.apply(op("finished", "a", {{"attempt", 2}, {"status", "error"}})));
  it = st.find("a");
  EXPECT_FALSE(it->should_retry("error")) << "no attempts left";
  EXPECT_DOUBLE_EQ(it->next_backoff_sec(), 20);
  EXPECT_EQ(it->attempts.size(), 2u);
  EXPECT_EQ(it->status, "error");
  EXPECT_EQ(st.problems().size(), 4u);
}

TEST(QueueState, CancelEndsAWaitingItemButOnlyAsksARunningOne) {
  QueueState st;
  st.apply(enq("w"));
  st.apply(enq("r", 5, {{"max_retries", 3}}));
  st.apply(op("claimed", "r", {{"attempt", 1}}));
  st.apply(op("started", "r", {{"attempt", 1}, {"run_id", "x"}}));
  ASSERT_TRUE(st.apply(op("cancelled", "w", {{"reason", "no"}})));
  ASSERT_TRUE(st.apply(op("cancelled", "r")));
  EXPECT_EQ(st.find("w")->state, ItemState::cancelled);
  EXPECT_EQ(st.find("r")->state, ItemState::running);
  EXPECT_TRUE(st.find("r")->cancel_requested);
  EXPECT_FALSE(st.find("r")->should_retry("error")) << "a cancelled item is never retried";
  EXPECT_FALSE(st.apply(op("cancelled", "w"))) << "cancelled after it ended";
}

TEST(QueueState, EligibilityOrderAndLimits) {
  QueueState st;
  st.apply(enq("low", 1));
  st.apply(enq("high", 9));
  st.apply(enq("mid-a", 5));
  st.apply(enq("mid-b", 5));
  st.apply(enq("later", 9, {{"run_after", "2999-01-01T00:00:00Z"}}));
  st.apply(enq("child", 9, {{"depends_on", {"low"}}}));
  std::vector<std::string> order;
  for (const auto* it : in_run_order(st)) order.push_back(it->item_id);
  EXPECT_EQ(order, (std::vector<std::string>{"high", "later", "child", "mid-a", "mid-b", "low"}));

  Limits lim;
  lim.global = 2;
  lim.per_pack["low"] = 1;
  int64_t now = parse_iso_ms("2026-06-01T00:00:00Z");
  auto d = [&](const std::string& id) { return derive(*st.find(id), st, lim, occupancy(st), now); };
  EXPECT_TRUE(d("high").eligible);
  EXPECT_EQ(d("later").why_not, "run_after 2999-01-01T00:00:00Z");
  EXPECT_EQ(d("child").why_not, "waiting for item low");
  st.apply(op("claimed", "high", {{"attempt", 1}}));
  EXPECT_NE(d("mid-a").why_not.find("pack low concurrency limit 1"), std::string::npos) << d("mid-a").why_not;
  lim.per_pack.clear();
  st.apply(op("claimed", "mid-a", {{"attempt", 1}}));
  EXPECT_NE(d("mid-b").why_not.find("global concurrency limit 2"), std::string::npos);
  // A dependency that failed blocks its dependents for good.
  st.apply(op("claimed", "low", {{"attempt", 1}}));
  st.apply(op("finished", "low", {{"attempt", 1}, {"status", "failure"}}));
  EXPECT_EQ(d("child").blocked_by, "low");
  st.apply(op("held", "mid-b"));
  lim.global = 10;
  EXPECT_EQ(d("mid-b").why_not, "held");
}

TEST(QueueState, SlaStates) {
  QueueState st;
  st.apply(enq("late", 5, {{"start_by", "2026-01-01T00:10:00Z"}}));
  st.apply(enq("tight", 5, {{"deadline", "2026-01-01T01:00:00Z"}, {"timeout_sec", 3600}}));
  st.apply(enq("fine", 5, {{"deadline", "2026-01-02T00:00:00Z"}, {"timeout_sec", 60}}));
  Limits lim;
  int64_t now = parse_iso_ms("2026-01-01T00:20:00Z");
  auto sla = [&](const std::string& id) {
    return derive(*st.find(id), st, lim, occupancy(st), now).sla_state;
  };
  EXPECT_EQ(sla("late"), "breached");
  EXPECT_EQ(sla("tight"), "at_risk");
  EXPECT_EQ(sla("fine"), "on_track");
  now = parse_iso_ms("2026-01-01T00:08:00Z");
  EXPECT_EQ(sla("late"), "at_risk") << "under a quarter of the wait left";
}

TEST(QueueTime, ParsesIsoAndRefusesOtherText) {
  EXPECT_EQ(parse_iso_ms("1970-01-01T00:00:01Z"), 1000);
  EXPECT_EQ(parse_iso_ms("1970-01-01T00:00:01.250Z"), 1250);
  EXPECT_EQ(parse_iso_ms("1970-01-01T00:00:01"), -1);
  EXPECT_EQ(parse_iso_ms("yesterday"), -1);
  EXPECT_EQ(iso_from_ms(1250), "1970-01-01T00:00:01.250Z");
}

TEST(QueueStore, TwoStoresShareOneLogAndDecideUnderTheLock) {
  cp::test::TempDir d;
  QueueStore a(d.path()), b(d.path());
  a.transact([](const QueueState&) { return std::vector<json>{enq("x")}; });
  EXPECT_TRUE(b.refresh());
  ASSERT_NE(b.state().find("x"), nullptr);
  // b cancels; a then decides on the fresh state (catching up under the lock) and cannot claim.
  b.transact([](const QueueState&) { return std::vector<json>{op("cancelled", "x")}; });
  bool saw_cancel = false;
  a.transact([&](const QueueState& st) {
    saw_cancel = st.find("x")->state == ItemState::cancelled;
    return std::vector<json>{};
  });
  EXPECT_TRUE(saw_cancel);
  // An operation that does not fit the schema, or the state, is refused and nothing is written.
  auto lines_before = cp::test::read_file(a.path());
  EXPECT_THROW(a.transact([](const QueueState&) {
    return std::vector<json>{json{{"op", "exploded"}}};
  }),
               std::invalid_argument);
  EXPECT_THROW(a.transact([](const QueueState&) {
    return std::vector<json>{op("claimed", "x", {{"attempt", 1}})};
  }),
               std::logic_error);
  EXPECT_EQ(cp::test::read_file(a.path()), lines_before);
}

TEST(QueueStore, TornTailIsCutBadLinesAreReported) {
  cp::test::TempDir d;
  {
    QueueStore s(d.path());
    s.transact([](const QueueState&) { return std::vector<json>{enq("x"), enq("y")}; });
  }
  {
    std::ofstream out(d / "queue.jsonl", std::ios::app);
    out << "not json\n"
        << R"({"op":"claimed","item_id":"x"})"
        << "\n"
        << R"({"op":"claimed","item_id":"x","ts":"2026)";
  }
  QueueStore s(d.path());
  s.refresh();
  EXPECT_EQ(s.state().items().size(), 2u);
  auto problems = s.problems();
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].line, 3u);
  EXPECT_EQ(problems[0].message, "not JSON");
  EXPECT_NE(problems[1].message.find("queue_item.schema.json"), std::string::npos);
  // A writer cuts the torn tail (its writer died before finishing the line) before appending.
  s.transact([](const QueueState&) { return std::vector<json>{op("cancelled", "y")}; });
  std::string text = cp::test::read_file(d / "queue.jsonl");
  EXPECT_EQ(text.find("\"ts\":\"2026{"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  QueueStore fresh(d.path());
  fresh.refresh();
  EXPECT_EQ(fresh.state().find("y")->state, ItemState::cancelled);
}

TEST(QueueStore, CompactionKeepsLiveItemsAndArchivesTheFullLog) {
  cp::test::TempDir d;
  QueueStore s(d.path());
  s.transact([](const QueueState&) {
    return std::vector<json>{enq("old"),
                             op("cancelled", "old"),
                             enq("dep"),
                             op("claimed", "dep", {{"attempt", 1}}),
                             op("finished", "dep", {{"attempt", 1}, {"status", "success"}}),
                             enq("live", 5, {{"depends_on", {"dep"}}})};
  });
  QueueStore other(d.path());
  other.refresh();
  size_t dropped = s.compact(0);
  EXPECT_EQ(dropped, 2u) << "old's two operations; dep is kept because live depends on it";
  EXPECT_EQ(s.state().items().size(), 2u);
  EXPECT_EQ(s.state().find("old"), nullptr);
  // The full log is in queue-history/, and another store notices the new file.
  size_t archived = 0;
  for (const auto& e : fs::directory_iterator(d / "queue-history")) {
    ++archived;
    EXPECT_NE(cp::test::read_file(e.path()).find("\"old\""), std::string::npos);
  }
  EXPECT_EQ(archived, 1u);
  other.refresh();
  EXPECT_EQ(other.state().find("old"), nullptr);
  EXPECT_NE(other.state().find("live"), nullptr);
}

}  // namespace
}  // namespace cp::queue
