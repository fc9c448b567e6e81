// The catalogue's filtered pages against the plain definition: for random roots and queries, paging
// RunCatalog::list with a cursor gives exactly store::list_runs filtered by store::matches, in order, after
// the first build (the rows rebuilt at once) and after small changes (rows inserted, updated and removed
// one by one).
#include "core/runtime_paths.hpp"
#include "serve/run_catalog.hpp"
#include "store/run_index.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

namespace cp::serve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::vector<std::string> kStatus{"created", "running", "awaiting_approval",
                                       "sealed",  "sealed",  "sealed"};
const std::vector<std::string> kVerdicts{"success", "failure", "denied", "timeout", "cancelled", "error"};
const std::vector<std::string> kTitles{"Fix the Login form", "routine", "", "LOGIN again", "Polish docs"};

struct Root {
  cp::test::TempDir dir;
  std::mt19937 rng{19};
  int made = 0;
  fs::path runs() const { return core::runs_dir(dir.path()); }
  int pick(int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); }
  // A run with random fields; few distinct creation times, so ties are common.
  void add() {
    char id[32], ts[40];
    std::snprintf(id, sizeof id, "r-%05d", made++);
    std::snprintf(ts, sizeof ts, "2026-02-%02dT10:00:%02d.000Z", 1 + pick(3), pick(20));
    write(id, ts, kStatus[static_cast<size_t>(pick(6))]);
  }
  void write(const std::string& id, const std::string& ts, const std::string& status) {
    json m{{"schema_version", 1},
           {"run_id", id},
           {"task_id", "task-" + std::to_string(pick(5))},
           {"title", kTitles[static_cast<size_t>(pick(5))]},
           {"runner", pick(2) ? "tool" : "codex"},
           {"pack", pick(2) ? "low" : "high"},
           {"workflow_id", "wf-" + std::to_string(pick(3))},
           {"created_at", ts},
           {"status", status}};
    if (status == "sealed") m["verdict"] = kVerdicts[static_cast<size_t>(pick(6))];
    cp::test::write_file(runs() / id / "manifest.json", m.dump());
  }
};

std::vector<std::string> expected(const fs::path& root, const store::RunQuery& q) {
  std::vector<std::string> ids;
  for (const auto& s : store::list_runs(root))
    if (store::matches(s, q)) ids.push_back(s.run_id);
  return ids;
}

std::vector<std::string> paged(const RunCatalog& c, const store::RunQuery& q, size_t limit) {
  std::vector<std::string> ids;
  std::string cursor;
  for (int guard = 0; guard < 10000; ++guard) {
    auto page = c.list(q, limit, cursor);
    EXPECT_TRUE(page.has_value());
    if (!page) break;
    EXPECT_LE(page->runs.size(), limit);
    for (const auto& r : page->runs) ids.push_back(r["run_id"]);
    if (page->next_cursor.empty()) break;
    EXPECT_EQ(page->runs.size(), limit) << "only a full page has a next one";
    cursor = page->next_cursor;
  }
  return ids;
}

std::vector<store::RunQuery> queries() {
  std::vector<store::RunQuery> qs;
  auto q = [&](auto fill) {
    store::RunQuery x;
    fill(x);
    qs.push_back(x);
  };
  q([](auto&) {});
  q([](auto& x) { x.verdict = "failure"; });
  q([](auto& x) { x.verdict = "awaiting_approval"; });
  q([](auto& x) { x.status = "sealed"; });
  q([](auto& x) { x.status = "denied"; });
  q([](auto& x) {
    x.status = "running";
    x.runner = "codex";
  });
  q([](auto& x) {
    x.workflow = "wf-1";
    x.pack = "high";
  });
  q([](auto& x) { x.workflow = "wf-none"; });
  q([](auto& x) { x.text = "login"; });
  q([](auto& x) {
    x.text = "LOGIN";
    x.verdict = "success";
  });
  q([](auto& x) { x.text = "R-0001"; });  // the run id
  q([](auto& x) { x.text = "task-3"; });
  q([](auto& x) { x.text = "form\x01"; });  // nothing holds it
  q([](auto& x) {
    x.since = "2026-02-02T10:00:10.000Z";
    x.text = "docs";
  });
  return qs;
}

void check_all(const Root& root, const RunCatalog& c, const std::string& when) {
  for (const auto& q : queries()) {
    auto want = expected(root.dir.path(), q);
    for (size_t limit : {1u, 7u, 1000u})
      EXPECT_EQ(paged(c, q, limit), want) << when << ": verdict=" << q.verdict << " status=" << q.status
                                          << " text=" << q.text << " limit=" << limit;
  }
}

TEST(RunCatalogFilters, PagesEqualThePlainFilterAfterABuildAndAfterSmallChanges) {
  Root root;
  for (int i = 0; i < 600; ++i) root.add();  // more than a small change: built at once
  RunCatalog c(root.dir.path());
  c.refresh();
  ASSERT_EQ(c.size(), 600u);
  check_all(root, c, "first build");

  // Small changes: new runs (some older than the newest), runs removed, live runs sealed.
  for (int i = 0; i < 40; ++i) root.add();
  for (const char* gone : {"r-00003", "r-00100", "r-00599"}) fs::remove_all(root.runs() / gone);
  int sealed = 0;
  for (const auto& s : store::list_runs(root.dir.path()))
    if (s.status == "running" && sealed++ < 10) root.write(s.run_id, s.created_at, "sealed");
  ASSERT_GT(sealed, 0);
  // The runs folder's mtime must move for the catalogue to re-list it; some filesystems keep a coarse one.
  fs::last_write_time(root.runs(), fs::last_write_time(root.runs()) + std::chrono::seconds(5));
  c.refresh();
  ASSERT_EQ(c.size(), 637u);
  check_all(root, c, "after small changes");
}

TEST(RunCatalogFilters, PagesEqualThePlainFilterAfterAStartFromTheIndexAndChangesAfterIt) {
  Root root;
  for (int i = 0; i < 600; ++i) root.add();
  CatalogIndex index;
  index.file = core::run_index_file(root.dir.path());
  {
    RunCatalog first(root.dir.path(), index);
    first.start();
  }
  RunCatalog c(root.dir.path(), index);
  ASSERT_TRUE(c.start().from_index);
  check_all(root, c, "from the index");
  for (int i = 0; i < 30; ++i) root.add();
  fs::remove_all(root.runs() / "r-00042");
  fs::last_write_time(root.runs(), fs::last_write_time(root.runs()) + std::chrono::seconds(5));
  c.refresh();
  ASSERT_EQ(c.size(), 629u);
  check_all(root, c, "after changes to a catalogue from the index");
}

TEST(RunCatalogFilters, AnUndecodableCursorIsRefusedAndAValueNoRunHasIsAnEmptyPage) {
  Root root;
  for (int i = 0; i < 20; ++i) root.add();
  RunCatalog c(root.dir.path());
  c.refresh();
  EXPECT_FALSE(c.list({}, 5, "zz").has_value());
  store::RunQuery q;
  q.runner = "nobody";
  auto page = c.list(q, 5, "");
  ASSERT_TRUE(page.has_value());
  EXPECT_TRUE(page->runs.empty());
  EXPECT_TRUE(page->next_cursor.empty());
}

}  // namespace
}  // namespace cp::serve
