// GET /api/runs's filters (verdict, workflow, text) against a real `cp-host serve` over a generated root:
// every filter pages with a cursor to exactly the runs that match, in order, none twice; and `cp-host runs
// list` answers the same filters with the same runs.
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace cp::test {
namespace {

struct Made {
  std::string id, verdict, workflow, title, task;
  bool awaiting = false;
};

// Every run id of a filtered listing, page after page of `limit`.
std::vector<std::string> page_all(uint16_t port, const std::string& token, const std::string& query,
                                  int limit, int& pages) {
  std::vector<std::string> ids;
  std::string cursor;
  pages = 0;
  for (;;) {
    std::string target = "/api/runs?limit=" + std::to_string(limit) + "&" + query;
    if (!cursor.empty()) target += "&cursor=" + cursor;
    auto r = http(port, "GET", target, bearer(token));
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    if (r.status != 200) break;
    json j = json::parse(r.body);
    for (const auto& run : j["runs"]) ids.push_back(run["run_id"]);
    ++pages;
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"];
  }
  return ids;
}

TEST(ServeRunsFilters, VerdictWorkflowAndTextPageToExactlyTheMatchingRuns) {
  RunProject p;
  std::string viewer = add_token(p, "dash", "viewer");
  // A real run: its manifest carries the contract's title, and its row what a list page shows.
  json contract = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  contract["title"] = "Polish the Greeting banner";
  contract["workflow_id"] = "wf-real";
  auto real = p.run(contract);
  ASSERT_FALSE(real.bundle.empty()) << real.ran.err;
  EXPECT_EQ(real.manifest["title"], "Polish the Greeting banner");
  const std::string real_id = real.manifest["run_id"];

  // 1,200 more: manifests only (all the catalogue reads), spread over verdicts, workflows and titles.
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  const std::vector<std::string> verdicts{"success", "failure", "denied", "timeout", "cancelled", "error"};
  std::vector<Made> made;
  for (int i = 0; i < 1200; ++i) {
    char id[64], ts[64];
    std::snprintf(id, sizeof id, "gen-%04d", i);
    std::snprintf(ts, sizeof ts, "2026-01-01T%02d:%02d:00.000Z", i / 60 % 24, i % 60 / 2);  // ties too
    Made m{id,
           verdicts[i % 6],
           (i / 2) % 3 ? "wf-a" : "wf-b",
           i % 5 ? "routine task" : "Fix the LOGIN form",
           "task-" + std::to_string(i % 7),
           i % 50 == 7};
    json man{{"schema_version", 1}, {"run_id", m.id}, {"task_id", m.task}, {"title", m.title},
             {"runner", "tool"},    {"pack", "low"},  {"created_at", ts},  {"workflow_id", m.workflow}};
    if (m.awaiting) {
      man["status"] = "awaiting_approval";
      m.verdict.clear();
    } else {
      man["status"] = "sealed";
      man["verdict"] = m.verdict;
    }
    write_file(runs / m.id / "manifest.json", man.dump());
    made.push_back(m);
  }
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
  ASSERT_NE(serve.port(), 0) << serve.output();

  // The real run's row: the fields a list page shows.
  auto r = http(serve.port(), "GET", "/api/runs?workflow=wf-real", bearer(viewer));
  ASSERT_EQ(r.status, 200) << r.body;
  json page = json::parse(r.body);
  ASSERT_EQ(page["count"], 1) << r.body;
  json row = page["runs"][0];
  EXPECT_EQ(row["run_id"], real_id);
  EXPECT_EQ(row["status"], "sealed");
  EXPECT_EQ(row["verdict"], real.manifest["verdict"]);
  EXPECT_EQ(row["runner"], "tool");
  EXPECT_EQ(row["pack"], real.manifest["pack"]);
  EXPECT_EQ(row["workflow_id"], "wf-real");
  EXPECT_EQ(row["title"], "Polish the Greeting banner");
  EXPECT_EQ(row["task_id"], contract["task_id"]);
  EXPECT_EQ(row["created_at"], real.manifest["created_at"]);
  EXPECT_EQ(row["finished_at"], real.manifest["finished_at"]);
  EXPECT_FALSE(row["finished_at"].get<std::string>().empty());

  // What each filter should give, newest first (created_at, then id, descending), computed here.
  auto expect = [&](const std::function<bool(const Made&)>& keep) {
    std::vector<std::pair<std::string, std::string>> keyed;
    for (int i = 0; i < 1200; ++i)
      if (keep(made[i])) {
        char ts[64];
        std::snprintf(ts, sizeof ts, "2026-01-01T%02d:%02d:00.000Z", i / 60 % 24, i % 60 / 2);
        keyed.emplace_back(ts, made[i].id);
      }
    std::sort(keyed.rbegin(), keyed.rend());
    std::vector<std::string> ids;
    for (auto& k : keyed) ids.push_back(k.second);
    return ids;
  };
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  struct Case {
    std::string query;
    std::function<bool(const Made&)> keep;
  };
  std::vector<Case> cases{
      {"verdict=failure", [](const Made& m) { return m.verdict == "failure"; }},
      {"verdict=failure&workflow=wf-b",
       [](const Made& m) { return m.verdict == "failure" && m.workflow == "wf-b"; }},
      {"q=login", [&](const Made& m) { return lower(m.title).find("login") != std::string::npos; }},
      {"q=LOGIN%20Form&verdict=denied",
       [&](const Made& m) {
         return m.verdict == "denied" && lower(m.title).find("login form") != std::string::npos;
       }},
      {"q=GEN-011", [](const Made& m) { return m.id.rfind("gen-011", 0) == 0; }},  // the run id
      {"q=task-3&workflow=wf-a", [](const Made& m) { return m.task == "task-3" && m.workflow == "wf-a"; }},
      {"verdict=awaiting_approval", [](const Made& m) { return m.awaiting; }},
  };
  for (const auto& c : cases) {
    auto want = expect(c.keep);
    ASSERT_FALSE(want.empty()) << c.query;
    ASSERT_LT(want.size(), 1200u) << c.query;
    int pages = 0;
    auto got = page_all(serve.port(), viewer, c.query, 7, pages);
    EXPECT_EQ(got, want) << c.query;
    EXPECT_EQ(pages, static_cast<int>((want.size() + 6) / 7)) << c.query << ": no empty last page";
  }
  // The title search finds the real run, whose title only the manifest holds.
  int pages = 0;
  auto found = page_all(serve.port(), viewer, "q=greeting%20BANNER", 50, pages);
  EXPECT_EQ(found, std::vector<std::string>{real_id});

  // Bad filters are refused with the parameter named, never ignored.
  r = http(serve.port(), "GET", "/api/runs?verdict=passed", bearer(viewer));
  EXPECT_EQ(r.status, 400) << r.body;
  json err = json::parse(r.body)["error"];
  EXPECT_EQ(err["details"]["parameter"], "verdict");
  EXPECT_NE(err["message"].get<std::string>().find("awaiting_approval"), std::string::npos) << err.dump();
  r = http(serve.port(), "GET", "/api/runs?q=" + std::string(201, 'x'), bearer(viewer));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["details"]["parameter"], "q");

  // The CLI answers the same filters with the same runs.
  Ran cli = p.runs({"list", "--json", "--limit", "5000", "--verdict", "failure", "--workflow", "wf-b"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  std::vector<std::string> cli_ids;
  json listed = json::parse(cli.out);
  for (const auto& run : listed["runs"]) cli_ids.push_back(run["run_id"]);
  EXPECT_EQ(cli_ids, expect(cases[1].keep));
  cli = p.runs({"list", "--json", "--search", "Greeting Banner"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  ASSERT_EQ(json::parse(cli.out)["count"], 1) << cli.out;
  EXPECT_EQ(json::parse(cli.out)["runs"][0]["title"], "Polish the Greeting banner");
  EXPECT_EQ(p.runs({"list", "--verdict", "passed"}).exit_code, 2) << "a bad filter is a usage error";
}

}  // namespace
}  // namespace cp::test
