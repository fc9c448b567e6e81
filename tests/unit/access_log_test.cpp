// The access lane's writer: every record handed over reaches the file by flush(), each line a log_event.v2
// envelope in exactly the form the lanes write (keys sorted as nlohmann sorts them), 5xx answers copied to
// the error lane, and nothing lost when records come faster than one batch.
#include "serve/access_log.hpp"
#include "core/runtime_paths.hpp"
#include "core/schema_catalog.hpp"
#include "log/log_lanes.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>
#include <vector>

namespace cp::serve {
namespace {

using nlohmann::json;

std::vector<std::string> lines_in(const std::filesystem::path& p) {
  std::vector<std::string> out;
  std::istringstream in(cp::test::read_file(p));
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

TEST(AccessLog, LinesAreEnvelopesInTheLanesOwnFormAndNoneIsLost) {
  cp::test::TempDir d;
  {
    AccessLog log(d.path());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&log, t] {
        for (int i = 0; i < 2500; ++i)
          log.write({"r-" + std::to_string(t) + "-" + std::to_string(i), "GET", "/api/runs/x\"y\\z\x01\xff",
                     "tok", "127.0.0.1", i % 10 == 0 ? 404 : 200, 0.125 * i, i == 7});
      });
    for (auto& th : threads) th.join();
    log.write({"r-err", "POST", "/api/runs", "tok", "::1", 503, 2.5, false});
    log.flush();
    auto lines = lines_in(log.path());
    ASSERT_EQ(lines.size(), 10001u);
    const auto& schema = core::schema("log_event.v2");
    size_t raw = 0, warn = 0, error = 0;
    for (const auto& line : lines) {
      json e = json::parse(line);
      // The same bytes nlohmann writes for the parsed event: key order, escapes, number form.
      ASSERT_EQ(e.dump(-1, ' ', false, json::error_handler_t::replace), line);
      ASSERT_TRUE(schema.validate(e).empty()) << line;
      EXPECT_EQ(e["lane"], "access");
      EXPECT_EQ(e["fields"]["token_id"], "tok");
      raw += e["fields"].value("raw", false) ? 1 : 0;
      warn += e["level"] == "warn" ? 1 : 0;
      error += e["level"] == "error" ? 1 : 0;
    }
    EXPECT_EQ(raw, 4u);
    EXPECT_EQ(warn, 1000u);
    EXPECT_EQ(error, 1u);
  }
  // The 5xx is copied to the error lane.
  auto errors = lines_in(core::logs_dir(d.path()) / "error" / "error.jsonl");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(json::parse(errors[0])["fields"]["from_lane"], "access");
  log::close_lanes();
}

}  // namespace
}  // namespace cp::serve
