// The command tower of `cp-host serve` over real HTTP, from real runs: the overview's numbers against runs
// made for it, and each alert rule raised by the situation it names (a hanging command, a deadline in the
// past, repeated gate failures, retries, a near approval deadline, a tiny retention cap) and cleared when
// the situation ends. Thresholds come from a test policies/alerts.json. The CLI twin reads the same root.
#include "integration/serve_fixture.hpp"

#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace cp::test {
namespace {

constexpr auto kLong = std::chrono::seconds(90);

void write_alerts(const RunProject& p, const json& rules) {
  write_file(p.dir / "policies/alerts.json",
             json{{"policy", "alerts"}, {"version", 1}, {"rules", rules}}.dump(2));
}

class Tower {
 public:
  // A serve over `p` with viewer and operator tokens; `extra` goes after `serve`.
  explicit Tower(RunProject& p, std::vector<std::string> extra = {}) {
    viewer = add_token(p, "vic-viewer", "viewer");
    op = add_token(p, "olga-operator", "operator");
    extra.insert(extra.end(), {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()});
    serve = std::make_unique<ServeProcess>(p, extra);
    EXPECT_NE(serve->port(), 0) << serve->output();
  }

  json get(const std::string& path) {
    auto r = http(serve->port(), "GET", path, bearer(viewer));
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  HttpResponse post(const std::string& path, const json& body) {
    auto h = bearer(op);
    h["Content-Type"] = "application/json";
    return http(serve->port(), "POST", path, h, body.dump());
  }
  json overview() { return get("/api/command-tower/overview"); }
  // The alert of that id, or null.
  json alert(const std::string& id) {
    json all = get("/api/command-tower/alerts");
    for (const auto& a : all.value("alerts", json::array()))
      if (a["id"] == id) return a;
    return nullptr;
  }
  // Waits until the alert holds (or, with `present` false, no longer does); returns it when it holds.
  json wait_alert(const std::string& id, bool present = true) {
    json a;
    bool ok = wait_until([&] { return (a = alert(id)).is_null() != present; }, kLong);
    EXPECT_TRUE(ok) << id << (present ? " never came" : " never cleared") << "\n" << serve->output();
    return a;
  }
  std::string submit(const json& body) {
    auto r = post("/api/runs", body);
    EXPECT_EQ(r.status, 202) << r.body;
    return json::parse(r.body).value("item_id", "");
  }

  std::string viewer, op;
  std::unique_ptr<ServeProcess> serve;
};

const std::vector<std::string> kFix{"sed -i s/Helo/Hello/ src/greeting.sh"};

long long nearest_rank(std::vector<long long> v, int pct) {
  std::sort(v.begin(), v.end());
  size_t rank = (static_cast<size_t>(pct) * v.size() + 99) / 100;
  return v[std::max<size_t>(rank, 1) - 1];
}

Ran tower_cli(const RunProject& p, std::vector<std::string> args) {
  std::vector<std::string> a{"--root", p.dir.path().string(), "tower"};
  a.insert(a.end(), args.begin(), args.end());
  return host(a);
}

TEST(ServeTower, OverviewCountsRealRunsAndRepeatedGateFailuresAlertUntilAPass) {
  RunProject p;
  write_alerts(p, {{"gate_failing", {{"in_a_row", 2}, {"in_window", 0}}}});
  Tower t(p, {"--no-scheduler"});
  // One success, then the same gate failing twice: the command leaves the typo, the tests fail.
  std::vector<json> manifests;
  for (const auto& cmds : {kFix, std::vector<std::string>{"true"}, std::vector<std::string>{"true"}}) {
    auto r = p.run(p.contract(cmds));
    ASSERT_FALSE(r.manifest.is_null()) << r.ran.err;
    manifests.push_back(r.manifest);
  }
  ASSERT_EQ(manifests[0]["verdict"], "success");
  ASSERT_EQ(manifests[2]["verdict"], "failure");
  const std::string failed = manifests[2]["run_id"];

  json o;
  ASSERT_TRUE(wait_until(
      [&] {
        o = t.overview();
        return o["runs"]["total"] == 3 && o["runs"]["by_state"].value("sealed", 0) == 3;
      },
      kLong))
      << o.dump(2);
  EXPECT_EQ(o["runs"]["by_verdict"], (json{{"success", 1}, {"failure", 2}}));
  EXPECT_EQ(o["runs"]["live"], 0);
  EXPECT_EQ(o["throughput"]["last_hour"]["finished"], 3);
  EXPECT_EQ(o["throughput"]["last_hour"]["succeeded"], 1);
  EXPECT_DOUBLE_EQ(o["throughput"]["last_day"]["success_rate"].get<double>(), 1.0 / 3);
  std::vector<long long> durations;
  for (const auto& m : manifests) durations.push_back(m["duration_ms"]);
  EXPECT_EQ(o["duration_ms"]["runs"], 3);
  EXPECT_EQ(o["duration_ms"]["p50"], nearest_rank(durations, 50));
  EXPECT_EQ(o["duration_ms"]["p95"], nearest_rank(durations, 95));
  json tests_gate;
  for (const auto& g : o["top_failing_gates"])
    if (g["gate_id"] == "acceptance_tests") tests_gate = g;
  ASSERT_FALSE(tests_gate.is_null()) << o["top_failing_gates"].dump(2);
  EXPECT_EQ(tests_gate["failures"], 2);
  EXPECT_EQ(tests_gate["results"], 3);
  EXPECT_EQ(tests_gate["last_failed_run"], failed);
  EXPECT_EQ(o["queue"]["depth"], 0);

  json a = t.wait_alert("gate_failing:acceptance_tests");
  EXPECT_EQ(a["severity"], "warning");
  EXPECT_EQ(a["link"], "/api/runs/" + failed);
  EXPECT_EQ(a["since"], manifests[2]["finished_at"]) << "the second failure in a row reached the threshold";
  EXPECT_EQ(t.get(a["link"].get<std::string>())["manifest"]["verdict"], "failure")
      << "the link leads to the failing run";

  // The CLI twin builds the same aggregate from the root.
  Ran cli = tower_cli(p, {"overview", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  json co = json::parse(cli.out);
  EXPECT_EQ(co["runs"]["by_verdict"], o["runs"]["by_verdict"]);
  EXPECT_EQ(co["duration_ms"], o["duration_ms"]);
  Ran cli_alerts = tower_cli(p, {"alerts", "--fail-on", "warning"});
  EXPECT_EQ(cli_alerts.exit_code, 1) << "a warning holds";
  EXPECT_NE(cli_alerts.out.find("gate_failing:acceptance_tests"), std::string::npos) << cli_alerts.out;

  // A pass ends the streak.
  ASSERT_EQ(p.run(p.contract(kFix)).manifest["verdict"], "success");
  t.wait_alert("gate_failing:acceptance_tests", false);
  EXPECT_EQ(tower_cli(p, {"alerts", "--fail-on", "warning"}).exit_code, 0);
}

TEST(ServeTower, RolesAndQueryParameters) {
  RunProject p;
  Tower t(p, {"--no-scheduler"});
  for (const char* path : {"/api/command-tower/overview", "/api/command-tower/alerts"}) {
    EXPECT_EQ(http(t.serve->port(), "GET", path).status, 401) << path;
    EXPECT_EQ(http(t.serve->port(), "GET", path, bearer("not-a-token")).status, 401) << path;
    EXPECT_EQ(http(t.serve->port(), "GET", path, bearer(t.op)).status, 200) << path;
    auto r = http(t.serve->port(), "GET", std::string(path) + "?severity=critical", bearer(t.viewer));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["details"]["parameter"], "severity");
    EXPECT_EQ(http(t.serve->port(), "POST", path, bearer(t.op)).status, 405) << path;
  }
  json a = t.get("/api/command-tower/alerts");
  EXPECT_EQ(a["count"], 0) << a.dump(2);
  EXPECT_EQ(a["rules"]["stuck_run"]["no_event_for_sec"], 900) << "the shipped thresholds";
}

TEST(ServeTower, StuckRunWhileAToolCommandHangsClearsWhenItIsCancelled) {
  RunProject p;
  write_alerts(p, {{"stuck_run", {{"no_event_for_sec", 2}}}});
  Tower t(p, {"--concurrency", "1"});
  std::string item = t.submit({{"contract", queue_contract(p, "hang", {"sh scripts/hang.sh"})}});
  std::string rid;
  ASSERT_TRUE(wait_until(
      [&] {
        json it = t.get("/api/queue/" + item);
        rid = it.value("run_id", "");
        return it["state"] == "running" && !rid.empty();
      },
      kLong));
  json a = t.wait_alert("stuck_run:" + rid);
  EXPECT_EQ(a["link"], "/api/runs/" + rid);
  EXPECT_EQ(a["subject"]["run_id"], rid);
  EXPECT_NE(a["message"].get<std::string>().find("no event for"), std::string::npos) << a.dump();
  EXPECT_LE(core::parse_iso_ms(a["subject"]["last_event_at"].get<std::string>()) + 2000,
            core::parse_iso_ms(a["since"].get<std::string>()));
  EXPECT_EQ(t.overview()["runs"]["live"], 1);
  Ran cli = tower_cli(p, {"alerts", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("stuck_run:" + rid), std::string::npos) << "the CLI sees the quiet run too";

  auto c = t.post("/api/runs/" + item + "/cancel", {{"reason", "stuck"}});
  ASSERT_EQ(c.status, 202) << c.body;
  t.wait_alert("stuck_run:" + rid, false);
  // The alert clears with the cancel's first event; the seal follows when the run has stopped.
  EXPECT_TRUE(
      wait_until([&] { return t.get("/api/runs/" + rid)["manifest"]["verdict"] == "cancelled"; }, kLong))
      << t.get("/api/runs/" + rid).dump(2);
  EXPECT_TRUE(wait_until([&] { return t.overview()["runs"]["live"] == 0; }, kLong)) << t.overview().dump(2);
}

TEST(ServeTower, SlaBreachedForAPastDeadlineAndAtRiskForATightOneClearWhenTheItemsEnd) {
  RunProject p;
  Tower t(p, {"--no-scheduler"});  // the items wait: their SLA is all that moves
  json c = queue_contract(p, "late", kFix);
  std::string late = t.submit({{"contract", c}, {"deadline", "2020-01-01T00:00:00Z"}});
  json tight_c = queue_contract(p, "tight", kFix);
  tight_c["timeout_retry"]["timeout_sec"] = 7200;  // may take two hours; due in one
  const std::string due = core::iso_from_ms(core::now_ms() + 3600 * 1000);
  std::string tight = t.submit({{"contract", tight_c}, {"deadline", due}});

  json breached = t.wait_alert("sla_breached:" + late);
  EXPECT_EQ(breached["severity"], "critical");
  EXPECT_EQ(breached["since"], "2020-01-01T00:00:00.000Z");
  EXPECT_EQ(breached["link"], "/api/queue/" + late);
  EXPECT_EQ(t.get(breached["link"].get<std::string>())["sla_state"], "breached") << "the link shows the item";
  json risk = t.wait_alert("sla_at_risk:" + tight);
  EXPECT_EQ(risk["severity"], "warning");
  EXPECT_EQ(core::parse_iso_ms(risk["since"].get<std::string>()), core::parse_iso_ms(due) - 7200 * 1000);
  json q = t.overview()["queue"];
  EXPECT_EQ(q["depth"], 2);
  EXPECT_EQ(q["sla"], (json{{"at_risk", 1}, {"breached", 1}}));

  ASSERT_EQ(t.post("/api/runs/" + late + "/cancel", json::object()).status, 202);
  ASSERT_EQ(t.post("/api/runs/" + tight + "/cancel", json::object()).status, 202);
  t.wait_alert("sla_breached:" + late, false);
  t.wait_alert("sla_at_risk:" + tight, false);
  q = t.overview()["queue"];
  EXPECT_EQ(q["depth"], 0);
  EXPECT_EQ(q["sla"], (json{{"at_risk", 0}, {"breached", 0}}));
}

TEST(ServeTower, RetryStormFiresOnRetriesAndClearsWhenTheyLeaveTheWindow) {
  RunProject p;
  write_alerts(p, {{"retry_storm", {{"retries", 2}, {"window_sec", 15}}}});
  Tower t(p, {"--concurrency", "1"});
  // Every attempt times out after a second; the retry policy tries twice more at once.
  json c = queue_contract(p, "flaky", {"sleep 30"}, 2);
  c["timeout_retry"]["timeout_sec"] = 1;
  std::string item = t.submit({{"contract", c}});
  json a = t.wait_alert("retry_storm");
  EXPECT_EQ(a["link"], "/api/queue");
  EXPECT_GE(a["subject"]["retries"].get<int>(), 2);
  EXPECT_EQ(a["subject"]["item_ids"], json::array({item}));
  json it;
  ASSERT_TRUE(wait_until([&] { return (it = t.get("/api/queue/" + item))["state"] == "done"; }, kLong));
  EXPECT_EQ(it["status"], "timeout");
  EXPECT_EQ(it["attempts"].size(), 3u);
  // No more retries: the storm passes when its retries are older than the window.
  t.wait_alert("retry_storm", false);
}

TEST(ServeTower, ApprovalDeadlineCloseFiresAndClearsWhenTheRunIsDecided) {
  RunProject p;
  json pack = json::parse(read_file(p.dir / "packs/high.json"));
  pack["approval"] = {{"approvers", 1}, {"deadline_sec", 3600}};
  write_file(p.dir / "packs/high.json", pack.dump(2));
  write_alerts(p, {{"approval_deadline", {{"within_sec", 7200}}}});
  Tower t(p, {"--no-scheduler"});
  json c = p.contract(kFix);
  c["runtime_options"]["pack"] = "high";
  auto r = p.run(c);
  ASSERT_EQ(r.ran.exit_code, 9) << r.ran.err;
  const std::string id = r.manifest["run_id"];
  json a = t.wait_alert("approval_deadline:" + id);
  EXPECT_EQ(a["link"], "/api/runs/" + id);
  EXPECT_EQ(a["subject"]["deadline"], r.manifest["approval"]["deadline"]);
  EXPECT_EQ(core::parse_iso_ms(a["since"].get<std::string>()),
            core::parse_iso_ms(r.manifest["approval"]["requested_at"].get<std::string>()))
      << "the deadline was within the threshold from the moment it was asked";
  json ap = t.overview()["approvals"];
  EXPECT_EQ(ap["awaiting"], 1);
  EXPECT_EQ(ap["nearest_deadline"]["run_id"], id);

  ASSERT_EQ(t.post("/api/runs/" + id + "/approve", json::object()).status, 200);
  t.wait_alert("approval_deadline:" + id, false);
  EXPECT_EQ(t.overview()["approvals"]["awaiting"], 0);
}

TEST(ServeTower, ALaneOverItsRetentionCapFiresAndClearsWhenTheCapIsRaised) {
  RunProject p;
  json policy = json::parse(read_file(p.dir / "policies/retention_policy.json"));
  policy["lanes"]["runs"]["max_bytes"] = 1;
  write_file(p.dir / "policies/retention_policy.json", policy.dump(2));
  write_alerts(p, {{"retention_over_cap", {{"check_every_sec", 1}}}});
  Tower t(p, {"--no-scheduler"});
  ASSERT_EQ(p.run(p.contract(kFix)).manifest["verdict"], "success");
  json a = t.wait_alert("retention_over_cap:runs");
  EXPECT_EQ(a["subject"]["cap_bytes"], 1);
  EXPECT_GT(a["subject"]["bytes"].get<long long>(), 1);
  EXPECT_EQ(a["link"], "/api/command-tower/overview");
  bool runs_lane_over = false;
  const json o = t.overview();  // named: a range-for over a member of a temporary would read freed memory
  for (const auto& l : o["disk"]["lanes"])
    if (l["lane"] == "runs") runs_lane_over = l["over"];
  EXPECT_TRUE(runs_lane_over);

  policy["lanes"]["runs"]["max_bytes"] = 1LL << 40;
  write_file(p.dir / "policies/retention_policy.json", policy.dump(2));
  t.wait_alert("retention_over_cap:runs", false);
}

TEST(ServeTower, AnInvalidAlertsPolicyStopsServeAndValidateNamesThePointer) {
  RunProject p;
  write_alerts(p, {{"stuck_run", {{"no_event_for_sec", 0}}}});
  ServeProcess serve(p, {"--no-scheduler"});
  EXPECT_EQ(serve.port(), 0) << "serve must not start";
  EXPECT_EQ(serve.stop(), 2);
  EXPECT_NE(serve.output().find("policies/alerts.json:"), std::string::npos) << serve.output();
  EXPECT_NE(serve.output().find("/rules/stuck_run/no_event_for_sec"), std::string::npos) << serve.output();

  Ran v = host({"--root", p.dir.path().string(), "validate", (p.dir / "policies/alerts.json").string()});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_NE((v.out + v.err).find("/rules/stuck_run/no_event_for_sec"), std::string::npos) << v.out << v.err;
  Ran cli = tower_cli(p, {"alerts"});
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_NE(cli.err.find("/rules/stuck_run/no_event_for_sec"), std::string::npos) << cli.err;

  write_file(p.dir / "policies/alerts.json", read_file(fs::path(CP_SOURCE_DIR) / "policies/alerts.json"));
  Ran ok = host({"--root", p.dir.path().string(), "validate", (p.dir / "policies/alerts.json").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

}  // namespace
}  // namespace cp::test
