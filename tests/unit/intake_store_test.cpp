// The intake store: the log is the truth, session.json a copy that may lag one event after a crash; a log
// that does not verify is never appended to; concurrent changes never lose one.
#include "intake/intake_store.hpp"
#include "core/json_schema.hpp"
#include "core/runtime_paths.hpp"
#include "core/schema_catalog.hpp"
#include "store/event_log.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

namespace fs = std::filesystem;
using cp::intake::IntakeEvent;
using cp::intake::IntakeStore;
using nlohmann::json;

namespace {

json fresh_session(const std::string& id) {
  return {{"schema_version", 1},
          {"intake_id", id},
          {"created_at", "2026-12-02T10:00:00Z"},
          {"updated_at", "2026-12-02T10:00:00Z"},
          {"created_by", "pm"},
          {"request", "fix the greeting"},
          {"repo", "/tmp/repo"},
          {"task_pack", nullptr},
          {"planner", "template"},
          {"state", "asking"},
          {"questions", json::array()},
          {"asked", json::array()},
          {"answers", json::object()},
          {"plan", nullptr},
          {"chain", nullptr},
          {"chain_id", nullptr},
          {"no_match", nullptr},
          {"error", nullptr}};
}

void expect_valid(const std::string& schema, const json& doc) {
  auto v = cp::core::schema(schema).validate(doc);
  EXPECT_TRUE(v.empty()) << schema << " at " << (v.empty() ? "" : v[0].pointer + ": " + v[0].message) << "\n"
                         << doc.dump(2);
}

}  // namespace

TEST(IntakeStore, EveryChangeIsAChainedEventCarryingTheSessionAndFitsTheSchemas) {
  cp::test::TempDir root;
  IntakeStore store(root.path());
  const std::string id = cp::intake::new_intake_id();
  ASSERT_TRUE(cp::intake::valid_intake_id(id)) << id;
  json s =
      store.create(fresh_session(id), {"INTAKE_CREATED", {{"by", "pm"}, {"request", "fix the greeting"}}});
  EXPECT_EQ(s["event_seq"], 1);
  auto after = store.update(id, [](json& st) -> std::optional<IntakeEvent> {
    st["questions"] = json::array({{{"id", "q1"}, {"text", "Which file?"}}});
    st["asked"] = st["questions"];
    return IntakeEvent{"INTAKE_QUESTIONS", {{"questions", st["questions"]}}};
  });
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)["event_seq"], 2);
  EXPECT_EQ(store.load(id)->at("questions").size(), 1u);
  expect_valid("intake_session", *store.load(id));

  auto events = store.events(id);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  for (const auto& ev : *events) {
    expect_valid("event", ev);
    EXPECT_EQ(ev["run_id"], id);
    EXPECT_EQ(ev["payload"]["session"]["event_seq"], ev["seq"]);
  }
  auto check = cp::store::verify_event_log(store.dir_of(id) / "events.jsonl");
  EXPECT_TRUE(check.ok) << check.reason;

  // A change that decides to change nothing writes nothing.
  store.update(id, [](json&) -> std::optional<IntakeEvent> { return std::nullopt; });
  EXPECT_EQ(store.events(id)->size(), 2u);
}

TEST(IntakeStore, ASessionFileLeftBehindByACrashIsReadFromTheLog) {
  cp::test::TempDir root;
  IntakeStore store(root.path());
  const std::string id = cp::intake::new_intake_id();
  store.create(fresh_session(id), {"INTAKE_CREATED", {}});
  fs::path file = store.dir_of(id) / "session.json";
  std::string before = cp::test::read_file(file);
  store.update(id, [](json& st) -> std::optional<IntakeEvent> {
    st["state"] = "planned";
    return IntakeEvent{"INTAKE_PLANNED", {}};
  });
  // The crash: the event is in the log, session.json is the old one.
  cp::test::write_file(file, before);
  auto s = store.load(id);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["state"], "planned");
  EXPECT_EQ((*s)["event_seq"], 2);
  // And the next change starts from the log's copy, not the stale file.
  auto next = store.update(id, [](json& st) -> std::optional<IntakeEvent> {
    EXPECT_EQ(st["state"], "planned");
    st["state"] = "queued";
    return IntakeEvent{"INTAKE_QUEUED", {{"chain_id", "c1"}}};
  });
  EXPECT_EQ((*next)["event_seq"], 3);

  // An edited copy that names the log's last event is not believed either: the log is read, never the file.
  json forged = json::parse(cp::test::read_file(file));
  forged["state"] = "planned";
  forged["chain"] = {{"steps", json::array()}};
  cp::test::write_file(file, forged.dump());
  auto after = store.load(id);
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)["state"], "queued");
  EXPECT_TRUE((*after)["chain"].is_null());
}

TEST(IntakeStore, ATamperedLogIsNeverAppendedToAndNothingIsRead) {
  cp::test::TempDir root;
  IntakeStore store(root.path());
  const std::string id = cp::intake::new_intake_id();
  store.create(fresh_session(id), {"INTAKE_CREATED", {}});
  fs::path log = store.dir_of(id) / "events.jsonl";
  std::string text = cp::test::read_file(log);
  auto at = text.find("fix the greeting");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 3, "FIX");
  cp::test::write_file(log, text);
  EXPECT_FALSE(store.load(id));
  EXPECT_THROW(store.update(id,
                            [](json&) -> std::optional<IntakeEvent> {
                              return IntakeEvent{"INTAKE_ANSWERED", {}};
                            }),
               std::runtime_error);
  EXPECT_EQ(cp::test::read_file(log), text) << "nothing appended to a log that does not verify";
  EXPECT_TRUE(store.list().empty());
}

TEST(IntakeStore, ConcurrentChangesAreSerialisedAndNoneIsLost) {
  cp::test::TempDir root;
  IntakeStore store(root.path());
  const std::string id = cp::intake::new_intake_id();
  store.create(fresh_session(id), {"INTAKE_CREATED", {}});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i)
        store.update(id, [&](json& st) -> std::optional<IntakeEvent> {
          std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
          st["answers"][key] = "x";
          return IntakeEvent{"INTAKE_ANSWERED", {{"answers", {{key, "x"}}}}};
        });
    });
  for (auto& th : threads) th.join();
  auto s = store.load(id);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["answers"].size(), 40u);
  EXPECT_EQ((*s)["event_seq"], 41);
  EXPECT_TRUE(cp::store::verify_event_log(store.dir_of(id) / "events.jsonl").ok);
}

TEST(IntakeStore, IdsThatAreNotIntakeIdsReachNoFile) {
  cp::test::TempDir root;
  IntakeStore store(root.path());
  fs::create_directories(cp::core::intake_dir(root.path()) / "intake-x");
  for (std::string bad : {"../runs", "intake-../../x", "", "runs", ".preview-abc", "intake-a/b"}) {
    EXPECT_FALSE(cp::intake::valid_intake_id(bad)) << bad;
    EXPECT_FALSE(store.load(bad)) << bad;
    EXPECT_FALSE(store.update(bad, [](json&) -> std::optional<IntakeEvent> {
      return IntakeEvent{"X", {}};
    })) << bad;
  }
  // A folder named like a session with no log is not a session.
  EXPECT_FALSE(store.load("intake-x"));
  EXPECT_TRUE(store.list().empty());
  // A session folder that is a link to elsewhere is not followed.
  cp::test::TempDir elsewhere;
  const std::string id = cp::intake::new_intake_id();
  IntakeStore other(elsewhere.path());
  other.create(fresh_session(id), {"INTAKE_CREATED", {}});
  fs::create_symlink(other.dir_of(id), store.dir_of(id));
  EXPECT_TRUE(store.list().empty());
}
