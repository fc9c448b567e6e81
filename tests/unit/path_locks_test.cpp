// Path locks: how an allowed_paths entry is written down as a lock, when two locks overlap (whole segments
// only), what a contract's allowed_paths lock, and the lock a waiting item names in its waiting_on.
#include "queue/path_locks.hpp"
#include "queue/queue_state.hpp"
#include "store/event_check.hpp"

#include <gtest/gtest.h>

namespace cp::queue {
namespace {

using nlohmann::json;

std::string norm(const std::string& p) {
  std::string why;
  auto n = normalise_lock_path(p, &why);
  return n ? *n : "REFUSED: " + why;
}

TEST(PathLocks, NormalisesWhatNamesThePlace) {
  EXPECT_EQ(norm("src"), "src");
  EXPECT_EQ(norm("src/"), "src/") << "a trailing slash says: this folder";
  EXPECT_EQ(norm("src///"), "src/");
  EXPECT_EQ(norm("./src/"), "src/");
  EXPECT_EQ(norm("././src"), "src");
  EXPECT_EQ(norm("src//a.c"), "src/a.c");
  EXPECT_EQ(norm("src/./a.c"), "src/a.c");
  EXPECT_EQ(norm("..."), "...") << "three dots is a name, not a way up";
  EXPECT_EQ(norm("a..b/c"), "a..b/c");
  // The whole repository.
  EXPECT_EQ(norm("."), ".");
  EXPECT_EQ(norm("./"), ".");
  EXPECT_EQ(norm("**"), ".");
  EXPECT_EQ(norm("*.md"), ".");
  // A glob locks the folder its first wildcard is in.
  EXPECT_EQ(norm("docs/*.md"), "docs/");
  EXPECT_EQ(norm("src/**/x.c"), "src/");
  EXPECT_EQ(norm("src/a?/b"), "src/");
}

TEST(PathLocks, RefusesWhatLeavesTheRepository) {
  for (const std::string bad : {"..", "../x", "src/..", "src/../../etc", "./..", "/etc/passwd", "/", ""}) {
    std::string why;
    EXPECT_FALSE(normalise_lock_path(bad, &why).has_value()) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_FALSE(normalise_lock_path(std::string("a\0b", 3)).has_value()) << "a NUL byte";
}

TEST(PathLocks, OverlapIsByWholeSegments) {
  EXPECT_TRUE(paths_overlap("src/", "src/a.c"));
  EXPECT_TRUE(paths_overlap("src/a.c", "src/"));
  EXPECT_TRUE(paths_overlap("src", "src/a.c"));
  EXPECT_TRUE(paths_overlap("src", "src/"));
  EXPECT_TRUE(paths_overlap("src/a.c", "src/a.c"));
  EXPECT_TRUE(paths_overlap("a", "a/b/c/d"));
  EXPECT_FALSE(paths_overlap("src", "srcx"));
  EXPECT_FALSE(paths_overlap("src/", "srcx/"));
  EXPECT_FALSE(paths_overlap("src/a.c", "src/a.cpp"));
  EXPECT_FALSE(paths_overlap("src/", "docs/"));
  EXPECT_FALSE(paths_overlap("src/a", "src/b"));
  EXPECT_TRUE(paths_overlap(".", "src/a.c")) << "the whole repository overlaps everything";
  EXPECT_TRUE(paths_overlap("docs/", "."));
  // Spellings of one place, once normalised, overlap.
  EXPECT_TRUE(paths_overlap(norm("./src//"), norm("src/a.c")));
  EXPECT_TRUE(same_lock_path("src", "src/"));
  EXPECT_FALSE(same_lock_path("src", "src/a.c"));
}

TEST(PathLocks, AContractLocksItsAllowedPathsEachOnce) {
  EXPECT_EQ(lock_paths_of(json::array({"src/", "src/a.c", "./src", "docs", "src//b/"})),
            (std::vector<std::string>{"src/", "docs"}));
  EXPECT_EQ(lock_paths_of(json::array({"docs/*.md", "docs/readme.md", "tests/"})),
            (std::vector<std::string>{"docs/", "tests/"}));
  EXPECT_EQ(lock_paths_of(json::array({"src", "."})), (std::vector<std::string>{"."}));
  EXPECT_EQ(lock_paths_of(json::array()), (std::vector<std::string>{"."})) << "none: the whole repository";
  EXPECT_EQ(lock_paths_of(json()), (std::vector<std::string>{"."}));
  try {
    lock_paths_of(json::array({"src/", "../x"}));
    ADD_FAILURE() << "'..' was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("/allowed_paths/1"), std::string::npos) << e.what();
  }
}

TEST(PathLocks, ConflictsStayWithinOneRepository) {
  PathLock held;
  held.repo = "/r1";
  held.path = "src/";
  held.item_id = "q-1";
  held.run_id = "run-1";
  std::vector<PathLock> all{held};
  EXPECT_NE(find_conflict(all, "/r1", {"docs/", "src/a.c"}), nullptr);
  EXPECT_EQ(find_conflict(all, "/r2", {"src/"}), nullptr) << "the same path of another repository";
  EXPECT_EQ(find_conflict(all, "/r1", {"srcx/", "docs"}), nullptr);
  EXPECT_EQ(held_by_text(held), "lock src/ held by run-1");
  held.run_id.clear();
  EXPECT_EQ(held_by_text(held), "lock src/ held by item q-1");
  EXPECT_EQ(lock_id("q-1", 1, "/r1", "src/"), lock_id("q-1", 1, "/r1", "src/"));
  EXPECT_NE(lock_id("q-1", 1, "/r1", "src/"), lock_id("q-1", 2, "/r1", "src/"));
  EXPECT_EQ(lock_id("q-1", 1, "/r1", "src/").size(), 19u);
}

// The queue state: a claimed attempt holds its locks until released, expired or ended; a waiting item
// whose paths overlap says which lock and who holds it.
TEST(PathLocks, QueueStateHoldsAnAttemptsLocksUntilItEnds) {
  auto enq = [](const std::string& id, json paths) {
    return json{
        {"op", "enqueued"}, {"item_id", id}, {"ts", "2026-01-01T00:00:00.000Z"}, {"task_id", "t"},
        {"pack", "low"},    {"repo", "/r"},  {"contract_path", "/c.json"},       {"lock_paths", paths}};
  };
  QueueState st;
  ASSERT_TRUE(st.apply(enq("a", {"src/"})));
  ASSERT_TRUE(st.apply(enq("b", {"src/a.c"})));
  ASSERT_TRUE(st.apply(enq("c", {"docs/"})));
  ASSERT_TRUE(st.apply({{"op", "claimed"},
                        {"item_id", "a"},
                        {"ts", "2026-01-01T00:00:01.000Z"},
                        {"attempt", 1},
                        {"locks", {"src/"}},
                        {"lock_expires_at", "2026-01-01T01:00:00.000Z"}}));
  ASSERT_TRUE(st.apply({{"op", "started"},
                        {"item_id", "a"},
                        {"ts", "2026-01-01T00:00:01.000Z"},
                        {"attempt", 1},
                        {"run_id", "run-a"}}));
  const int64_t t = parse_iso_ms("2026-01-01T00:30:00Z");
  Limits lim;
  lim.global = 10;
  Occupancy occ = occupancy(st, t);
  ASSERT_EQ(occ.locks.size(), 1u);
  EXPECT_EQ(occ.locks[0].run_id, "run-a");
  Derived db = derive(*st.find("b"), st, lim, occ, t);
  EXPECT_FALSE(db.eligible);
  EXPECT_EQ(db.why_not, "lock src/ held by run-a");
  EXPECT_EQ(to_json(*st.find("b"), db)["waiting_on"], "lock src/ held by run-a");
  EXPECT_TRUE(derive(*st.find("c"), st, lim, occ, t).eligible);
  // Past its expiry the lock is ignored, though nobody released it yet.
  const int64_t later = parse_iso_ms("2026-01-01T01:00:00.001Z");
  EXPECT_TRUE(held_locks(st, later).empty());
  EXPECT_EQ(expired_locks(st, later).size(), 1u);
  EXPECT_TRUE(derive(*st.find("b"), st, lim, occupancy(st, later), later).eligible);
  // Released: gone at once.
  ASSERT_TRUE(st.apply({{"op", "locks_released"},
                        {"item_id", "a"},
                        {"ts", "2026-01-01T00:31:00.000Z"},
                        {"attempt", 1},
                        {"paths", {"src/"}}}));
  EXPECT_TRUE(held_locks(st, t).empty());
  EXPECT_TRUE(expired_locks(st, later).empty());
  EXPECT_TRUE(derive(*st.find("b"), st, lim, occupancy(st, t), t).eligible);
  EXPECT_FALSE(st.apply(
      {{"op", "locks_released"}, {"item_id", "c"}, {"ts", "2026-01-01T00:31:00.000Z"}, {"attempt", 1}}))
      << "an item that holds no claim releases nothing";
}

// A release is recorded as a host event with a payload schema of its own; no plugin may log one into a run.
TEST(PathLocks, TheReleaseEventHasAPayloadSchemaAndOnlyTheHostLogsIt) {
  EXPECT_TRUE(store::host_owned_event("PATH_LOCK_RELEASED"));
  PathLock l;
  l.lock_id = lock_id("q-1", 1, "/r", "src/");
  l.repo = "/r";
  l.path = "src/";
  l.item_id = "q-1";
  l.attempt = 1;
  l.since = "2026-01-01T00:00:00.000Z";
  l.expires_at = "2026-01-01T01:00:00.000Z";
  json payload{
      {"how", "forced"}, {"by", "boss"}, {"by_kind", "token"}, {"reason", "stuck"}, {"locks", {to_json(l)}}};
  EXPECT_EQ(store::check_event("PATH_LOCK_RELEASED", payload), "");
  json no_reason = payload;
  no_reason.erase("reason");
  EXPECT_NE(store::check_event("PATH_LOCK_RELEASED", no_reason), "");
  json no_locks = payload;
  no_locks["locks"] = json::array();
  EXPECT_NE(store::check_event("PATH_LOCK_RELEASED", no_locks), "");
  json other_how = payload;
  other_how["how"] = "asked";
  EXPECT_NE(store::check_event("PATH_LOCK_RELEASED", other_how), "");
}

}  // namespace
}  // namespace cp::queue
