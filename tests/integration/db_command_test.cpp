// `cp-host db migrate|status` as an operator runs them, against a real PostgreSQL (unit/pg_server.hpp).
#include "unit/pg_server.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cp {
namespace {

using nlohmann::json;

test::Ran db(const std::vector<std::string>& args) {
  std::vector<std::string> argv{CP_HOST_BIN, "db"};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv);
}

TEST(DbCommand, StatusNamesTheMigrationThenMigrateAppliesItOnceAndStatusSaysCurrent) {
  const std::string url = test::PgServer::shared().fresh_database();
  test::Ran before = db({"status", "--store", url});
  EXPECT_EQ(before.exit_code, 1) << before.out << before.err;
  EXPECT_NE(before.out.find("version 0 of"), std::string::npos) << before.out;
  EXPECT_NE(before.out.find("pending: 1: queue operation log"), std::string::npos) << before.out;

  test::Ran first = db({"migrate", "--store", url, "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  json applied = json::parse(first.out);
  EXPECT_FALSE(applied["applied"].empty());
  test::Ran again = db({"migrate", "--store", url});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("nothing to do"), std::string::npos) << again.out;

  test::Ran after = db({"status", "--store", url, "--json"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  json s = json::parse(after.out);
  EXPECT_EQ(s["current"], true);
  EXPECT_TRUE(s["pending"].empty());
  EXPECT_EQ(s["queue"]["items"], 0);
}

TEST(DbCommand, AnUnreachableDatabaseIsExitSixWithoutThePassword) {
  test::Ran r = db({"status", "--store", "postgresql://cp:s3cret-pw@127.0.0.1:1/cp?connect_timeout=2"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL"), std::string::npos) << r.err;
  EXPECT_EQ((r.out + r.err).find("s3cret-pw"), std::string::npos) << "the password was printed";
}

}  // namespace
}  // namespace cp
