// The catalogue's compact rows and its persistent index: every run's fields come back exactly as its manifest
// wrote them, before and after a save and a load; a start from the index reads only the runs not final; what
// changed while serve was stopped (runs added, removed, a sealed manifest rewritten) is taken in; and a
// damaged or forged index is refused, never trusted, and the catalogue is built from the bundles instead.
#include "serve/run_index_file.hpp"
#include "core/runtime_paths.hpp"
#include "serve/run_catalog.hpp"
#include "store/bundle.hpp"
#include "store/run_index.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

namespace cp::serve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct IndexedRoot {
  cp::test::TempDir dir;
  fs::path runs() const { return core::runs_dir(dir.path()); }
  fs::path index() const { return core::run_index_file(dir.path()); }
  void manifest(const std::string& id, const json& m) {
    cp::test::write_file(runs() / id / "manifest.json", m.dump());
  }
  void sealed(const std::string& id, const std::string& created, const std::string& verdict) {
    manifest(id,
             {{"run_id", id},
              {"task_id", "t-" + id},
              {"status", "sealed"},
              {"verdict", verdict},
              {"created_at", created},
              {"runner", "tool"},
              {"gates",
               json::array({{{"gate_id", "diff_scope"}, {"verdict", "pass"}},
                            {{"gate_id", "tests"}, {"verdict", verdict == "success" ? "pass" : "fail"}}})}});
  }
  CatalogIndex with_index() const {
    CatalogIndex i;
    i.file = index();
    return i;
  }
  // Moves the runs folder's mtime, as adding or removing a run does on a filesystem with coarse times.
  void touch_runs() const {
    fs::last_write_time(runs(), fs::last_write_time(runs()) + std::chrono::seconds(7));
  }
};

// What the listing must give for every run: store::read_run_summary's fields, newest first.
std::vector<json> fields_on_disk(const fs::path& root) {
  std::vector<json> out;
  for (const auto& s : store::list_runs(root)) out.push_back(s.fields);
  return out;
}

std::vector<json> listed_fields(const RunCatalog& c) {
  auto page = c.list({}, 1000, "");
  EXPECT_TRUE(page.has_value());
  return page ? page->runs : std::vector<json>{};
}

void write_tricky_runs(IndexedRoot& r) {
  r.sealed("a-canonical", "2026-03-01T10:00:00.123Z", "success");
  // A time in another format, a float duration, a duration too large for int64, an object field, escapes.
  r.manifest("b-odd", {{"status", "sealed"},
                       {"verdict", "failure"},
                       {"created_at", "2026-03-01T10:00:00Z"},
                       {"finished_at", "2026-03-01T10:00:01.5Z"},
                       {"sealed_at", "2026-03-01T10:00:02.000Z"},
                       {"duration_ms", 12.5},
                       {"title", "quote \" tab \t snow \u2603 nul-free"},
                       {"chain", {{"chain_id", "c1"}, {"step", 2}}},
                       {"queue", json::array({1, "x"})},
                       {"kind", "chain"},
                       {"reason", nullptr}});
  r.manifest("c-huge", {{"status", "sealed"},
                        {"verdict", 7},
                        {"created_at", "2026-03-01T10:00:00.123Z"},
                        {"duration_ms", 18446744073709551615ull},
                        {"runner", 5},
                        {"workflow_id", "wf-1"}});
  r.manifest("d-live",
             {{"status", "running"}, {"created_at", "2026-03-02T00:00:00.000Z"}, {"duration_ms", -3}});
  cp::test::write_file(r.runs() / "e-unreadable" / "manifest.json", "{not json");
  fs::create_directories(r.runs() / "f-empty");
}

TEST(RunIndexFile, FieldsComeBackAsTheManifestWroteThemBeforeAndAfterALoad) {
  IndexedRoot r;
  write_tricky_runs(r);
  const auto want = fields_on_disk(r.dir.path());
  ASSERT_EQ(want.size(), 6u);

  RunCatalog built(r.dir.path(), r.with_index());
  CatalogStart first = built.start();
  EXPECT_FALSE(first.from_index);
  EXPECT_EQ(first.index_problem, "");
  EXPECT_EQ(listed_fields(built), want);
  ASSERT_TRUE(fs::exists(r.index())) << "the first start saves the index";

  RunCatalog loaded(r.dir.path(), r.with_index());
  CatalogStart second = loaded.start();
  EXPECT_TRUE(second.from_index) << second.index_problem;
  EXPECT_EQ(second.indexed, 6u);
  EXPECT_EQ(listed_fields(loaded), want);
  EXPECT_EQ(loaded.count_by_status(), built.count_by_status());
  EXPECT_EQ(loaded.gate_outcomes(), built.gate_outcomes());
}

TEST(RunIndexFile, AStartFromTheIndexReadsOnlyTheRunsNotFinal) {
  IndexedRoot r;
  char id[32], ts[40];
  for (int i = 0; i < 400; ++i) {
    std::snprintf(id, sizeof id, "run-%04d", i);
    std::snprintf(ts, sizeof ts, "2026-04-01T10:%02d:%02d.000Z", i / 60, i % 60);
    if (i % 100 == 7)
      r.manifest(id, {{"status", "running"}, {"created_at", ts}});
    else
      r.sealed(id, ts, i % 3 ? "success" : "failure");
  }
  {
    RunCatalog c(r.dir.path(), r.with_index());
    EXPECT_EQ(c.start().read, 400u);
  }
  RunCatalog c(r.dir.path(), r.with_index());
  CatalogStart s = c.start();
  EXPECT_TRUE(s.from_index) << s.index_problem;
  EXPECT_EQ(s.read, 4u) << "only the four live runs are read again";
  EXPECT_FALSE(s.listed) << "the runs folder did not change since the index was saved";
  EXPECT_EQ(listed_fields(c), fields_on_disk(r.dir.path()));
  EXPECT_EQ(c.stats().total(), 400);
}

TEST(RunIndexFile, WhatChangedWhileStoppedIsTakenIn) {
  IndexedRoot r;
  r.sealed("old-1", "2026-05-01T00:00:01.000Z", "success");
  r.sealed("old-2", "2026-05-01T00:00:02.000Z", "success");
  r.sealed("old-3", "2026-05-01T00:00:03.000Z", "success");
  {
    RunCatalog c(r.dir.path(), r.with_index());
    c.start();
  }
  // While no serve runs: a run added, one removed, one sealed manifest rewritten with another verdict.
  r.sealed("new-4", "2026-05-01T00:00:04.000Z", "failure");
  fs::remove_all(r.runs() / "old-1");
  r.sealed("old-2", "2026-05-01T00:00:02.000Z", "denied");
  r.touch_runs();

  RunCatalog c(r.dir.path(), r.with_index());
  CatalogStart s = c.start();
  EXPECT_TRUE(s.from_index) << s.index_problem;
  EXPECT_TRUE(s.listed);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(c.span("old-1").has_value());
  ASSERT_TRUE(c.span("new-4").has_value());
  // The rewritten manifest is found by the stamp check, which runs with the refreshes after the start.
  EXPECT_GT(c.unchecked(), 0u);
  c.refresh();
  EXPECT_EQ(c.unchecked(), 0u);
  EXPECT_EQ(listed_fields(c), fields_on_disk(r.dir.path()));
  store::RunQuery q;
  q.verdict = "denied";
  auto page = c.list(q, 10, "");
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->runs.size(), 1u);
  EXPECT_EQ(page->runs[0]["run_id"], "old-2");
}

TEST(RunIndexFile, ARunsFolderTakenAwayWhileStoppedLeavesNoIndexedRunListed) {
  IndexedRoot r;
  r.sealed("gone-1", "2026-05-01T00:00:01.000Z", "success");
  r.manifest("gone-live", {{"status", "running"}, {"created_at", "2026-05-01T00:00:02.000Z"}});
  {
    RunCatalog c(r.dir.path(), r.with_index());
    c.start();
  }
  fs::remove_all(r.runs());
  RunCatalog c(r.dir.path(), r.with_index());
  EXPECT_TRUE(c.start().from_index);
  EXPECT_EQ(c.size(), 0u) << "no runs folder: no run";
  EXPECT_TRUE(listed_fields(c).empty());
  EXPECT_EQ(c.stats().total(), 0);
  // A runs folder made again with one run: listed at the next refresh.
  r.sealed("new-1", "2026-05-02T00:00:01.000Z", "failure");
  c.refresh();
  EXPECT_EQ(listed_fields(c), fields_on_disk(r.dir.path()));
}

TEST(RunIndexFile, ADamagedIndexIsRefusedAndTheBundlesAreRead) {
  IndexedRoot r;
  for (int i = 0; i < 50; ++i) r.sealed("run-" + std::to_string(i), "2026-06-01T00:00:00.000Z", "success");
  {
    RunCatalog c(r.dir.path(), r.with_index());
    c.start();
  }
  const std::string good = cp::test::read_file(r.index());
  const auto want = fields_on_disk(r.dir.path());
  auto start_with = [&](const std::string& bytes) {
    cp::test::write_file(r.index(), bytes);
    RunCatalog c(r.dir.path(), r.with_index());
    CatalogStart s = c.start();
    EXPECT_FALSE(s.from_index);
    EXPECT_EQ(listed_fields(c), want) << "built from the bundles";
    return s.index_problem;
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x20;
  EXPECT_NE(start_with(flipped).find("checksum"), std::string::npos);
  EXPECT_NE(start_with(good.substr(0, good.size() - 9)), "");
  EXPECT_NE(start_with(good.substr(0, 20)), "");
  EXPECT_NE(start_with(""), "");
  EXPECT_NE(start_with(std::string(4096, '\xff')), "");
  // The failed start wrote a good index again: the next start uses it.
  RunCatalog again(r.dir.path(), r.with_index());
  EXPECT_TRUE(again.start().from_index);
}

TEST(RunIndexFile, AForgedRunIdThatLeavesTheRunsFolderIsRefused) {
  IndexedRoot r;
  RunTable t;
  store::RunSummary s;
  s.run_id = "../../outside";
  s.status = "sealed";
  s.fields = {{"run_id", s.run_id}, {"status", "sealed"}};
  t.put(s, 0, 1);
  save_run_index(r.index(), t, "");
  std::string why;
  EXPECT_FALSE(load_run_index(r.index(), why).has_value());
  EXPECT_NE(why.find("unsafe"), std::string::npos) << why;

  RunTable twice;
  s.run_id = "same";
  twice.put(s, 0, 1);
  twice.put(s, 0, 1);  // a second row with the same id, as a forged file could hold
  save_run_index(r.index(), twice, "");
  EXPECT_FALSE(load_run_index(r.index(), why).has_value());
  EXPECT_NE(why.find("repeated"), std::string::npos) << why;
}

TEST(RunIndexFile, AGateIdThatIsNotUtf8IsRefusedEvenWithItsChecksumSet) {
  IndexedRoot r;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  {
    RunCatalog c(r.dir.path(), r.with_index());
    c.start();
  }
  std::string bytes = cp::test::read_file(r.index());
  const size_t at = bytes.find("diff_scope");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4] = '\xa3';  // a lone continuation byte: a gate id no manifest could hold
  std::string why;
  EXPECT_FALSE(parse_run_index(reseal_run_index(bytes), why).has_value());
  EXPECT_NE(why.find("UTF-8"), std::string::npos) << why;
  cp::test::write_file(r.index(), reseal_run_index(bytes));
  RunCatalog c(r.dir.path(), r.with_index());
  EXPECT_FALSE(c.start().from_index);
  EXPECT_EQ(listed_fields(c), fields_on_disk(r.dir.path()));
  EXPECT_NO_THROW((void)json(listed_fields(c)).dump());
}

TEST(RunIndexFile, AFolderWhoseNameIsNoRunIdIsNotARun) {
  IndexedRoot r;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  // Names the host never gives a run: bytes that are not UTF-8, "..", too long, a leading dash.
  for (const std::string& bad :
       {std::string("run-\xa3"), std::string("a..b"), std::string(129, 'x'), std::string("-dash")})
    cp::test::write_file(r.runs() / bad / "manifest.json", R"({"status":"sealed","verdict":"success"})");
  ASSERT_EQ(fields_on_disk(r.dir.path()).size(), 1u);
  for (bool indexed : {false, true}) {
    RunCatalog c(r.dir.path(), indexed ? r.with_index() : CatalogIndex{});
    c.start();
    c.refresh();
    const auto listed = listed_fields(c);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0]["run_id"], "run-1");
    EXPECT_NO_THROW((void)json(listed).dump());
  }
}

TEST(RunIndexFile, ANewRunIdIsAlwaysAValidOne) {
  for (const std::string& task : {std::string("a..b"), std::string("..."), std::string("x/../y"),
                                  std::string("ünï"), std::string("-lead"), std::string(200, 'k')}) {
    const std::string id = store::new_run_id(task);
    EXPECT_TRUE(store::valid_run_id(id)) << task << " gave " << id;
  }
  EXPECT_TRUE(store::valid_run_id("Run_1.2-x"));
  EXPECT_FALSE(store::valid_run_id(""));
  EXPECT_FALSE(store::valid_run_id(".hidden"));
  EXPECT_FALSE(store::valid_run_id("a/b"));
  EXPECT_FALSE(store::valid_run_id("a..b"));
  EXPECT_FALSE(store::valid_run_id(std::string("a\0b", 3)));
  EXPECT_TRUE(store::valid_run_id(std::string(128, 'a')));
  EXPECT_FALSE(store::valid_run_id(std::string(129, 'a')));
}

TEST(RunIndexFile, AValueNestedDeeperThanAManifestMayBeIsRefused) {
  IndexedRoot r;
  RunTable t;
  store::RunSummary s;
  s.run_id = "deep";
  s.status = "sealed";
  json deep = json::array();
  for (int i = 0; i < 300; ++i) deep = json::array({deep});
  s.fields = {{"run_id", s.run_id}, {"status", "sealed"}, {"title", deep}};
  t.put(s, 0, 1);
  save_run_index(r.index(), t, "");
  std::string why;
  EXPECT_FALSE(load_run_index(r.index(), why).has_value());
  EXPECT_NE(why.find("nested deeper"), std::string::npos) << why;
}

TEST(RunIndexFile, AFifoInPlaceOfTheIndexOrItsTemporaryFileHoldsNothingUp) {
  IndexedRoot r;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  fs::create_directories(r.index().parent_path());
  ASSERT_EQ(::mkfifo(r.index().c_str(), 0644), 0);
  ASSERT_EQ(::mkfifo((r.index().string() + ".tmp").c_str(), 0644), 0);
  RunCatalog c(r.dir.path(), r.with_index());
  CatalogStart s = c.start();  // would block in open() if either FIFO were opened for reading or writing
  EXPECT_FALSE(s.from_index);
  EXPECT_NE(s.index_problem.find("not a regular file"), std::string::npos) << s.index_problem;
  EXPECT_EQ(c.size(), 1u);
}

TEST(RunIndexFile, AHugeSparseIndexIsRefusedFromItsHeader) {
  IndexedRoot r;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  {
    RunCatalog c(r.dir.path(), r.with_index());
    c.start();
  }
  // The saved header with its row count raised to fill a 64 GiB hole: no memory is taken for it.
  std::string head = cp::test::read_file(r.index()).substr(0, 112);
  const uint64_t rows = (64ull << 30) / sizeof(RunTable::Row);
  std::memcpy(head.data() + 16, &rows, sizeof rows);
  cp::test::write_file(r.index(), head);
  ASSERT_EQ(::truncate(r.index().c_str(), static_cast<off_t>(112 + (64ull << 30))), 0);
  std::string why;
  EXPECT_FALSE(load_run_index(r.index(), why).has_value());
  EXPECT_NE(why.find("add up"), std::string::npos) << why;
  RunCatalog c(r.dir.path(), r.with_index());
  EXPECT_FALSE(c.start().from_index);
  EXPECT_EQ(c.size(), 1u);
}

TEST(RunIndexFile, AnIndexedRunWhoseFolderIsGoneIsDroppedEvenWithTheFolderStampForged) {
  IndexedRoot r;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  RunTable t;
  for (const char* id : {"run-1", "ghost"}) {
    store::RunSummary s = *store::read_run_summary(r.runs() / "run-1", "run-1");
    s.run_id = id;
    s.fields["run_id"] = id;
    t.put(s, 0, std::string(id) == "ghost" ? 0 : manifest_stamp(r.runs() / id / "manifest.json"));
  }
  // The runs folder's stamp as the catalogue takes it, so that the folder is not listed again.
  struct stat st {};
  ASSERT_EQ(::stat(r.runs().c_str(), &st), 0);
  const std::string stamp = std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) +
                            '/' + std::to_string(st.st_ctim.tv_sec) + '.' +
                            std::to_string(st.st_ctim.tv_nsec) + '/' + std::to_string(st.st_ino);
  save_run_index(r.index(), t, stamp);
  RunCatalog c(r.dir.path(), r.with_index());
  ASSERT_TRUE(c.start().from_index);
  c.refresh();  // the background check of every indexed manifest
  EXPECT_EQ(c.unchecked(), 0u);
  EXPECT_EQ(listed_fields(c), fields_on_disk(r.dir.path()));
}

TEST(RunIndexFile, ALinkedManifestIsReadAgainAfterARestart) {
  IndexedRoot r;
  cp::test::TempDir elsewhere;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  r.sealed("run-2", "2026-06-01T00:00:01.000Z", "success");
  const fs::path target = elsewhere.path() / "manifest.json";
  fs::rename(r.runs() / "run-2" / "manifest.json", target);
  fs::create_symlink(target, r.runs() / "run-2" / "manifest.json");
  {
    RunCatalog c(r.dir.path(), r.with_index());
    c.start();
  }
  json m = json::parse(cp::test::read_file(target));
  m["verdict"] = "failure";
  cp::test::write_file(target, m.dump());
  RunCatalog c(r.dir.path(), r.with_index());
  ASSERT_TRUE(c.start().from_index);
  c.refresh();
  EXPECT_EQ(listed_fields(c), fields_on_disk(r.dir.path()));
}

TEST(RunIndexFile, RunsTakenAwayLeaveNothingOfThemInTheSavedIndex) {
  IndexedRoot r;
  for (int i = 0; i < 30; ++i) r.sealed("old-" + std::to_string(i), "2026-06-01T00:00:00.000Z", "success");
  RunCatalog c(r.dir.path(), r.with_index());
  c.start();
  for (int i = 0; i < 30; ++i) {
    fs::remove_all(r.runs() / ("old-" + std::to_string(i)));
    r.sealed("new-" + std::to_string(i), "2026-06-02T00:00:00.000Z", "failure");
  }
  r.touch_runs();
  c.refresh();
  c.save_index();
  std::string why;
  auto image = load_run_index(r.index(), why);
  ASSERT_TRUE(image.has_value()) << why;
  EXPECT_EQ(image->table.arena().find("old-"), std::string::npos);
  for (const auto& v : image->table.values()) EXPECT_EQ(v.dump.find("old-"), std::string::npos) << v.dump;
  EXPECT_EQ(image->table.gate_store().size(), 60u) << "two gate results for each of the 30 runs kept";
  RunCatalog again(r.dir.path(), r.with_index());
  ASSERT_TRUE(again.start().from_index);
  EXPECT_EQ(listed_fields(again), fields_on_disk(r.dir.path()));
}

TEST(RunIndexFile, ALinkInPlaceOfTheIndexFolderIsNotWrittenThrough) {
  IndexedRoot r;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  cp::test::TempDir elsewhere;
  fs::create_directories(r.index().parent_path().parent_path());
  fs::create_directory_symlink(elsewhere.path(), r.index().parent_path());
  RunCatalog c(r.dir.path(), r.with_index());
  CatalogStart s = c.start();
  EXPECT_NE(s.index_problem.find("not a folder"), std::string::npos) << s.index_problem;
  EXPECT_EQ(c.size(), 1u);
  EXPECT_TRUE(fs::is_empty(elsewhere.path())) << "nothing was saved through the link";
}

TEST(RunIndexFile, ALinkInPlaceOfTheIndexIsNotFollowed) {
  IndexedRoot r;
  r.sealed("run-1", "2026-06-01T00:00:00.000Z", "success");
  cp::test::TempDir elsewhere;
  const fs::path target = elsewhere.path() / "victim";
  cp::test::write_file(target, "keep");
  fs::create_directories(r.index().parent_path());
  fs::create_symlink(target, r.index());
  RunCatalog c(r.dir.path(), r.with_index());
  CatalogStart s = c.start();
  EXPECT_FALSE(s.from_index);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(cp::test::read_file(target), "keep") << "saving replaced the link, never wrote through it";
  EXPECT_FALSE(fs::is_symlink(r.index()));
}

}  // namespace
}  // namespace cp::serve
