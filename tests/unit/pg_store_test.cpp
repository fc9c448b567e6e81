// The PostgreSQL store against a real server (unit/pg_server.hpp): schema migrations, refusals of a
// database that is not migrated, and a queue that loses nothing and doubles nothing while the server
// restarts under load. The queue's whole contract runs against it in queue_backend_test.cpp.
#include "db/migrations.hpp"
#include "db/pg_connection.hpp"
#include "queue/queue_backend.hpp"
#include "unit/pg_queue_support.hpp"
#include "unit/pg_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

namespace cp {
namespace {

namespace fs = std::filesystem;
using test::PgServer;

// ctest's set-up and clean-up of the shared server (FIXTURES_SETUP / FIXTURES_CLEANUP pg): disabled, so
// that only those two entries run them.
TEST(PgServerFixture, DISABLED_Start) {
  EXPECT_NO_THROW(PgServer::shared());
}
TEST(PgServerFixture, DISABLED_Stop) {
  PgServer::stop_shared();
}

TEST(PgSchema, MigrateTwiceIsANoOpAndStatusSaysCurrent) {
  std::string url = PgServer::shared().fresh_database();
  db::PgConnection c(url);
  db::SchemaStatus before = db::schema_status(c);
  EXPECT_EQ(before.version, 0);
  EXPECT_EQ(before.pending.size(), db::migrations().size());
  auto first = db::migrate(c);
  EXPECT_EQ(first.size(), db::migrations().size());
  auto second = db::migrate(c);
  EXPECT_TRUE(second.empty()) << "a second migrate applies nothing";
  db::SchemaStatus after = db::schema_status(c);
  EXPECT_EQ(after.version, db::latest_schema_version());
  EXPECT_TRUE(after.pending.empty());
  EXPECT_EQ(c.exec("SELECT count(*) FROM cp_schema_migrations").integer(0, 0),
            static_cast<int64_t>(db::migrations().size()))
      << "each migration recorded once";
  EXPECT_NO_THROW(db::require_current_schema(c));
}

TEST(PgSchema, TwoMigratorsAtOnceApplyEachMigrationOnce) {
  std::string url = PgServer::shared().fresh_database();
  std::atomic<int> applied{0}, failed{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      try {
        db::PgConnection c(url);
        applied += static_cast<int>(db::migrate(c).size());
      } catch (const std::exception&) {
        ++failed;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(applied, static_cast<int>(db::migrations().size()));
}

TEST(PgSchema, AnUnmigratedOrOlderDatabaseIsRefusedWithTheCommandToRun) {
  std::string url = PgServer::shared().fresh_database();
  try {
    test::pg_queue(url);
    FAIL() << "an empty database was accepted";
  } catch (const db::SchemaMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("cp-host db migrate --store"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("version 0 of"), std::string::npos) << e.what();
  }
  db::PgConnection c(url);
  db::migrate(c);
  // A database a newer cp-host migrated: refused too, and nothing is written to it.
  c.exec("INSERT INTO cp_schema_migrations (version, name) VALUES (999, 'from the future')");
  EXPECT_THROW(test::pg_queue(url), db::SchemaMismatch);
  c.exec("DELETE FROM cp_schema_migrations WHERE version = 999");
  EXPECT_NO_THROW(test::pg_queue(url));
}

TEST(PgSchema, AnUnreachableServerIsAClearErrorWithoutThePassword) {
  try {
    db::PgConnection c("postgresql://cp:hunter2@127.0.0.1:1/nosuch?connect_timeout=2");
    FAIL() << "connected to nothing";
  } catch (const db::DbError& e) {
    std::string m = e.what();
    EXPECT_TRUE(e.transient());
    EXPECT_NE(m.find("cannot connect to PostgreSQL"), std::string::npos) << m;
    EXPECT_EQ(m.find("hunter2"), std::string::npos) << "the password leaked: " << m;
  }
}

TEST(PgSchema, ConnectionStringsAreShownWithoutTheirPasswordInEveryForm) {
  for (const std::string& s : {std::string("postgres://u:hunter2@db.example/cp"),
                               std::string("postgresql://u:hun%40ter2@db.example:5433/cp?sslmode=disable"),
                               std::string("host=db.example password=hunter2 dbname=cp"),
                               std::string("host=db.example password = 'hunter2 with spaces' dbname=cp"),
                               std::string("postgres://u@db.example/cp?password=hunter2")}) {
    std::string shown = db::redact_conninfo(s);
    EXPECT_EQ(shown.find("hunter2"), std::string::npos) << s << " -> " << shown;
    EXPECT_EQ(shown.find("hun%40ter2"), std::string::npos) << s << " -> " << shown;
    EXPECT_NE(shown.find("db.example"), std::string::npos) << s << " -> " << shown;
  }
  // A string libpq cannot parse is not echoed at all, and is a usage error, not an unreachable server.
  for (const std::string& s :
       {std::string("postgres://u:hunter2@[::1:1/db"), std::string("postgres://u:hunter2%zz@h/db"),
        std::string("PASSWORD=hunter2"), std::string("password hunter2")}) {
    EXPECT_EQ(db::redact_conninfo(s).find("hunter2"), std::string::npos) << s;
    try {
      db::PgConnection c(s);
      FAIL() << "connected with " << s;
    } catch (const db::DbError& e) {
      EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
      EXPECT_EQ(e.sqlstate(), "config") << s << ": " << e.what();
      EXPECT_FALSE(e.transient());
    }
  }
}

TEST(PgQueue, ClaimersOnARepeatableReadDatabaseNeverClaimTheSameItem) {
  // The server's default isolation must not matter: each decision reads what committed before it.
  std::string url = PgServer::shared().fresh_database();
  {
    db::PgConnection c(url);
    db::migrate(c);
    std::string name = url.substr(url.rfind('=') + 1);
    c.exec("ALTER DATABASE " + name + " SET default_transaction_isolation = 'repeatable read'");
  }
  constexpr int kItems = 60, kThreads = 4;
  {
    auto q = test::pg_queue(url);
    for (int i = 0; i < kItems; ++i)
      ASSERT_EQ(q->submit(test::pg_item("i" + std::to_string(i))).kind, queue::SubmitOutcome::Kind::queued);
  }
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      auto q = test::pg_queue(url);
      queue::ClaimRequest r;
      r.limits.global = 1000;
      while (auto it = q->claim(r)) {
        std::lock_guard<std::mutex> l(mu);
        claimed.insert(it->item_id);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kItems));
  for (const auto& id : std::set<std::string>(claimed.begin(), claimed.end()))
    EXPECT_EQ(claimed.count(id), 1u) << id;
}

TEST(PgQueue, AServerRestartUnderLoadLosesNothingAndDoublesNothing) {
  // A server of its own in a folder under /tmp that the postgres user may enter.
  auto server =
      PgServer::own(fs::temp_directory_path() / ("cp-test-pg-restart-" + std::to_string(::getpid())));
  std::string url = server->fresh_database();
  {
    db::PgConnection c(url);
    db::migrate(c);
  }
  constexpr int kItems = 120;
  std::atomic<int> submitted{0};
  std::atomic<bool> failed{false};
  std::string failure;
  std::thread writer([&] {
    try {
      auto q = test::pg_queue(url);
      for (int i = 0; i < kItems; ++i) {
        auto out = q->submit(test::pg_item("r" + std::to_string(i)));
        // A submit whose COMMIT got no answer is decided again: it finds its own item and says so.
        if (out.kind != queue::SubmitOutcome::Kind::queued &&
            out.kind != queue::SubmitOutcome::Kind::duplicate)
          throw std::runtime_error("submit " + std::to_string(i) + " refused");
        ++submitted;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    } catch (const std::exception& e) {
      failure = e.what();
      failed = true;
    }
  });
  while (submitted < kItems / 3 && !failed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server->restart();  // under load: the writer's connection dies mid-stream
  writer.join();
  ASSERT_FALSE(failed) << failure;
  auto q = test::pg_queue(url);
  auto snap = q->list();
  EXPECT_EQ(snap->state.items().size(), static_cast<size_t>(kItems));
  EXPECT_TRUE(snap->problems.empty()) << snap->problems.front().message;
  db::PgConnection c(url);
  EXPECT_EQ(c.exec("SELECT count(*) FROM cp_queue_ops WHERE op->>'op' = 'enqueued'").integer(0, 0), kItems)
      << "each item enqueued exactly once";
}

}  // namespace
}  // namespace cp
