// The command tower's aggregation in process: RunStats (percentiles, windows, gate streaks, re-read and
// dropped runs), QueueStats (SLA states and their since, retries), the alert rules over crafted state,
// policies/alerts.json against its schema, and the lane sizes the retention rule compares with their caps.
#include "serve/command_tower.hpp"
#include "contract/file_kind.hpp"
#include "core/clock.hpp"
#include "plugin/isolated_plugin.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_state.hpp"
#include "retention/lane_usage.hpp"
#include "serve/alert_rules.hpp"
#include "serve/queue_stats.hpp"
#include "serve/run_catalog.hpp"
#include "serve/run_stats.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>

namespace cp::serve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kHour = 60 * kMin;
// A fixed "now" well inside the clock's range, so every time below is exact.
const int64_t kNow = core::parse_iso_ms("2026-06-15T12:00:00Z");

std::string iso(int64_t ms) {
  return core::iso_from_ms(ms);
}

store::RunSummary sealed(const std::string& id, const std::string& verdict, int64_t finished_ms,
                         long long duration_ms = 100,
                         std::vector<std::pair<std::string, std::string>> gates = {}) {
  store::RunSummary s;
  s.run_id = id;
  s.task_id = "t-" + id;
  s.status = "sealed";
  s.verdict = verdict;
  s.created_at = iso(finished_ms - duration_ms);
  s.finished_at = iso(finished_ms);
  s.duration_ms = duration_ms;
  s.gates = std::move(gates);
  return s;
}

TEST(RunStats, PercentilesAreNearestRankOverSealedRuns) {
  RunStats st;
  EXPECT_EQ(st.durations().p50, -1) << "no runs: no percentile";
  // 20 runs of 10, 20, ..., 200 ms, added in a shuffled order.
  std::vector<int> order(20);
  for (int i = 0; i < 20; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  for (int i : order) st.update(sealed("r" + std::to_string(i), "success", kNow - kMin, (i + 1) * 10));
  // A run still running has no duration that counts.
  store::RunSummary live;
  live.run_id = "live";
  live.status = "running";
  live.duration_ms = 99999;
  st.update(live);
  auto d = st.durations();
  EXPECT_EQ(d.runs, 20);
  EXPECT_EQ(d.p50, 100) << "rank ceil(0.50 * 20) = 10: the 10th smallest";
  EXPECT_EQ(d.p95, 190) << "rank ceil(0.95 * 20) = 19";
  // 100 runs of 1..100 ms: p50 50, p95 95.
  RunStats hundred;
  for (int i = 1; i <= 100; ++i) hundred.update(sealed("h" + std::to_string(i), "failure", kNow, i));
  EXPECT_EQ(hundred.durations().p50, 50);
  EXPECT_EQ(hundred.durations().p95, 95);
  // One run: both percentiles are it.
  RunStats one;
  one.update(sealed("only", "success", kNow, 1234));
  EXPECT_EQ(one.durations().p50, 1234);
  EXPECT_EQ(one.durations().p95, 1234);
  // A re-read summary replaces what the run contributed; a dropped run takes it back.
  st.update(sealed("r19", "success", kNow - kMin, 5));  // 200 -> 5: 5, 10, 20, ..., 190
  EXPECT_EQ(st.durations().p50, 90);
  EXPECT_EQ(st.durations().p95, 180);
  for (int i = 0; i < 10; ++i) st.remove("r" + std::to_string(i));  // left: 5, 110..190
  EXPECT_EQ(st.durations().runs, 10);
  EXPECT_EQ(st.durations().p50, 140);
  EXPECT_EQ(st.durations().p95, 190);
}

TEST(RunStats, WindowsCountRunsByWhenTheyFinished) {
  RunStats st;
  st.update(sealed("a", "success", kNow - 30 * kMin));
  st.update(sealed("b", "failure", kNow - 2 * kHour));
  st.update(sealed("c", "success", kNow - 25 * kHour));
  st.update(sealed("edge", "denied", kNow - kHour));  // exactly at the hour's start: inside
  store::RunSummary waiting;
  waiting.run_id = "w";
  waiting.status = "awaiting_approval";
  waiting.finished_at = iso(kNow - kMin);  // gates done, not decided: not finished yet
  st.update(waiting);
  auto hour = st.finished_since(kNow - kHour);
  EXPECT_EQ(hour.finished, 2);
  EXPECT_EQ(hour.succeeded, 1);
  auto day = st.finished_since(kNow - 24 * kHour);
  EXPECT_EQ(day.finished, 3);
  EXPECT_EQ(day.succeeded, 1);
  EXPECT_EQ(st.finished_since(0).finished, 4);
  // Approved later: it counts at its finished_at.
  waiting.status = "sealed";
  waiting.verdict = "success";
  st.update(waiting);
  EXPECT_EQ(st.finished_since(kNow - kHour).succeeded, 2);
  EXPECT_EQ(st.by_state().at("sealed"), 5);
  EXPECT_EQ(st.by_state().count("awaiting_approval"), 0u);
  EXPECT_EQ(st.by_verdict().at("success"), 3);
}

TEST(RunStats, StatesFollowReReadsAndRemovals) {
  RunStats st;
  store::RunSummary r;
  r.run_id = "r1";
  r.status = "running";
  r.created_at = iso(kNow - 10 * kMin);
  r.events_mtime_ms = kNow - 5 * kMin;
  st.update(r);
  EXPECT_EQ(st.by_state().at("running"), 1);
  EXPECT_EQ(st.live_runs(), 1);
  ASSERT_EQ(st.quiet_runs(kNow - kMin).size(), 1u);
  EXPECT_EQ(st.quiet_runs(kNow - kMin)[0].last_event_ms, kNow - 5 * kMin);
  EXPECT_TRUE(st.quiet_runs(kNow - 10 * kMin).empty()) << "its last event is newer than that";
  // It wrote an event: no longer quiet.
  r.events_mtime_ms = kNow;
  st.update(r);
  EXPECT_TRUE(st.quiet_runs(kNow - kMin).empty());
  // Sealed: not live, counted once.
  st.update(sealed("r1", "success", kNow));
  EXPECT_EQ(st.live_runs(), 0);
  EXPECT_EQ(st.total(), 1);
  EXPECT_EQ(st.by_state().count("running"), 0u);
  st.remove("r1");
  EXPECT_EQ(st.total(), 0);
  EXPECT_TRUE(st.by_state().empty());
  EXPECT_TRUE(st.by_verdict().empty());
  EXPECT_EQ(st.finished_since(0).finished, 0);
  st.remove("r1");  // twice: nothing
}

TEST(RunStats, GateStreaksAndWindows) {
  RunStats st;
  auto gate = [](const std::string& verdict) {
    return std::vector<std::pair<std::string, std::string>>{{"tests", verdict}, {"scope", "pass"}};
  };
  st.update(sealed("p1", "success", kNow - 50 * kMin, 10, gate("pass")));
  st.update(sealed("f1", "failure", kNow - 40 * kMin, 10, gate("fail")));
  st.update(sealed("s1", "failure", kNow - 35 * kMin, 10, gate("skipped")));  // neither ends nor adds
  st.update(sealed("f2", "failure", kNow - 30 * kMin, 10, gate("error")));
  EXPECT_TRUE(st.failing_gates(3, 0, 0).empty()) << "two failures in a row are not three";
  st.update(sealed("f3", "failure", kNow - 20 * kMin, 10, gate("fail")));
  auto f = st.failing_gates(3, 0, 0);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].gate_id, "tests");
  EXPECT_EQ(f[0].in_a_row, 3);
  EXPECT_EQ(f[0].since_ms, kNow - 20 * kMin) << "the streak reached three with f3";
  EXPECT_EQ(f[0].last_failed_run, "f3");
  // A fourth keeps the alert's since where the threshold was reached.
  st.update(sealed("f4", "failure", kNow - 10 * kMin, 10, gate("fail")));
  EXPECT_EQ(st.failing_gates(3, 0, 0)[0].since_ms, kNow - 20 * kMin);
  // A newer pass ends the streak.
  st.update(sealed("p2", "success", kNow - 5 * kMin, 10, gate("pass")));
  EXPECT_TRUE(st.failing_gates(3, 0, 0).empty());
  // The window: four failures within the last hour, passes between them.
  f = st.failing_gates(0, 4, kNow - kHour);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].in_window, 4);
  EXPECT_EQ(f[0].since_ms, kNow - 10 * kMin) << "the fourth failure of the window";
  EXPECT_TRUE(st.failing_gates(0, 5, kNow - kHour).empty());
  EXPECT_TRUE(st.failing_gates(0, 4, kNow - 25 * kMin).empty()) << "only two are that recent";
  // A dropped run takes its result out of the streak and the window.
  st.remove("p2");
  EXPECT_EQ(st.failing_gates(3, 0, 0).size(), 1u);
  st.remove("f4");
  st.remove("f3");
  EXPECT_TRUE(st.failing_gates(3, 4, kNow - kHour).empty());

  auto top = st.top_failing_gates(5);
  ASSERT_EQ(top.size(), 1u) << "scope never failed";
  EXPECT_EQ(top[0].gate_id, "tests");
  EXPECT_EQ(top[0].fail, 1);
  EXPECT_EQ(top[0].error, 1);
  EXPECT_EQ(top[0].results, 4);  // p1 f1 s1 f2
  EXPECT_EQ(top[0].last_failed_run, "f2");
}

TEST(RunStats, TopFailingGatesMostFirst) {
  RunStats st;
  for (int i = 0; i < 6; ++i) {
    std::vector<std::pair<std::string, std::string>> g{{"a", i < 2 ? "fail" : "pass"},
                                                       {"b", i < 4 ? "fail" : "pass"},
                                                       {"c", i < 2 ? "error" : "pass"},
                                                       {"d", "pass"}};
    st.update(sealed("r" + std::to_string(i), "failure", kNow - i * kMin, 10, g));
  }
  auto top = st.top_failing_gates(2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].gate_id, "b");
  EXPECT_EQ(top[0].failures(), 4);
  EXPECT_EQ(top[1].gate_id, "a") << "a and c tie at two: by id";
  EXPECT_EQ(st.top_failing_gates(10).size(), 3u) << "d never failed";
}

TEST(RunStats, AwaitingRunsByDeadline) {
  RunStats st;
  auto waiting = [](const std::string& id, int64_t deadline) {
    store::RunSummary s;
    s.run_id = id;
    s.status = "awaiting_approval";
    s.approval_requested_at = iso(kNow - kHour);
    if (deadline >= 0) s.approval_deadline = iso(deadline);
    return s;
  };
  st.update(waiting("late", kNow + 5 * kHour));
  st.update(waiting("soon", kNow + 10 * kMin));
  st.update(waiting("none", -1));
  auto all = st.awaiting_by_deadline(INT64_MAX, 10);
  ASSERT_EQ(all.size(), 2u) << "a run without a deadline has none to be near";
  EXPECT_EQ(all[0].run_id, "soon");
  EXPECT_EQ(st.awaiting_by_deadline(kNow + kHour, 10).size(), 1u);
  EXPECT_EQ(st.awaiting_by_deadline(INT64_MAX, 1).size(), 1u);
  EXPECT_EQ(st.by_state().at("awaiting_approval"), 3);
  EXPECT_EQ(st.live_runs(), 0) << "waiting for people is not live work";
  st.update(sealed("soon", "success", kNow));
  EXPECT_EQ(st.awaiting_by_deadline(INT64_MAX, 10)[0].run_id, "late");
}

// Queue operations as the backend writes them.
json op(const std::string& kind, const std::string& id, int64_t ts, json extra = json::object()) {
  extra["op"] = kind;
  extra["item_id"] = id;
  extra["ts"] = iso(ts);
  return extra;
}

TEST(QueueStats, SlaStatesWithTheirSinceAndRetries) {
  queue::QueueState q;
  // Past its deadline, still waiting.
  q.apply(op("enqueued", "late", kNow - kHour, {{"task_id", "t1"}, {"deadline", iso(kNow - 10 * kMin)}}));
  // Its deadline is an hour away but its run may take two.
  q.apply(op("enqueued", "tight", kNow - kMin,
             {{"task_id", "t2"}, {"deadline", iso(kNow + kHour)}, {"timeout_sec", 7200}}));
  // Not started by its start_by.
  q.apply(op("enqueued", "slow", kNow - kHour, {{"task_id", "t3"}, {"start_by", iso(kNow - kMin)}}));
  // Past its deadline but ended: history, not an alert.
  q.apply(op("enqueued", "done", kNow - 2 * kHour, {{"deadline", iso(kNow - kHour)}}));
  q.apply(op("claimed", "done", kNow - 90 * kMin, {{"attempt", 1}}));
  q.apply(op("finished", "done", kNow - 30 * kMin, {{"attempt", 1}, {"status", "success"}}));
  // Retried twice by the retry policy.
  q.apply(op("enqueued", "flaky", kNow - kHour, {{"max_retries", 2}}));
  for (int a = 1; a <= 2; ++a) {
    q.apply(op("claimed", "flaky", kNow - (30 - a * 10) * kMin, {{"attempt", a}}));
    q.apply(op("finished", "flaky", kNow - (29 - a * 10) * kMin, {{"attempt", a}, {"status", "timeout"}}));
    q.apply(op("retried", "flaky", kNow - (29 - a * 10) * kMin));
  }
  q.apply(op("held", "flaky", kNow));
  ASSERT_TRUE(q.problems().empty()) << q.problems()[0].message;
  QueueStats s = derive_queue_stats(q, kNow);
  EXPECT_EQ(s.depth, 4);
  EXPECT_EQ(s.held, 1);
  EXPECT_EQ(s.by_state.at("done"), 1);
  EXPECT_EQ(s.breached, 2);
  EXPECT_EQ(s.at_risk, 1);
  ASSERT_EQ(s.sla.size(), 3u);
  EXPECT_EQ(s.sla[0].item_id, "late") << "breached first, oldest first";
  EXPECT_EQ(s.sla[0].since_ms, kNow - 10 * kMin);
  EXPECT_EQ(s.sla[0].bound, "deadline");
  EXPECT_EQ(s.sla[1].item_id, "slow");
  EXPECT_EQ(s.sla[1].bound, "start_by");
  EXPECT_EQ(s.sla[2].item_id, "tight");
  EXPECT_EQ(s.sla[2].sla_state, "at_risk");
  EXPECT_EQ(s.sla[2].since_ms, kNow + kHour - 2 * kHour) << "deadline minus its timeout";
  ASSERT_EQ(s.retries.size(), 2u);
  EXPECT_EQ(s.retries_since(kNow - 20 * kMin), 2);
  EXPECT_EQ(s.retries_since(kNow - 10 * kMin), 1);
  EXPECT_EQ(s.retries_since(kNow), 0);
}

AlertPolicy quick_policy() {
  AlertPolicy p;
  p.stuck_after_sec = 60;
  p.gate_in_a_row = 2;
  p.gate_in_window = 0;
  p.retry_count = 2;
  p.retry_window_sec = 3600;
  p.approval_within_sec = 3600;
  return p;
}

TEST(AlertRules, EachRuleFiresOnItsSituationWithSeverityLinkAndSince) {
  RunStats runs;
  store::RunSummary quiet;
  quiet.run_id = "quiet";
  quiet.task_id = "hang";
  quiet.status = "running";
  quiet.events_mtime_ms = kNow - 5 * kMin;
  runs.update(quiet);
  runs.update(sealed("g1", "failure", kNow - 3 * kMin, 10, {{"acceptance_tests", "fail"}}));
  runs.update(sealed("g2", "failure", kNow - 2 * kMin, 10, {{"acceptance_tests", "fail"}}));
  store::RunSummary waiting;
  waiting.run_id = "wait";
  waiting.status = "awaiting_approval";
  waiting.approval_requested_at = iso(kNow - 2 * kHour);
  waiting.approval_deadline = iso(kNow + 30 * kMin);
  runs.update(waiting);
  queue::QueueState q;
  q.apply(op("enqueued", "late", kNow - kHour, {{"deadline", iso(kNow - kMin)}}));
  q.apply(op("enqueued", "flaky", kNow - kHour, {{"max_retries", 3}}));
  for (int a = 1; a <= 2; ++a) {
    q.apply(op("claimed", "flaky", kNow - 10 * kMin + a, {{"attempt", a}}));
    q.apply(op("finished", "flaky", kNow - 9 * kMin + a, {{"attempt", a}, {"status", "error"}}));
    q.apply(op("retried", "flaky", kNow - 9 * kMin + a));
  }
  QueueStats qs = derive_queue_stats(q, kNow);
  DiskState disk;
  disk.measured_ms = kNow - kMin;
  retention::LaneUsage lane;
  lane.lane = "runs";
  lane.bytes = 2048;
  lane.cap_bytes = 1024;
  disk.lanes.push_back(lane);
  disk.over_since["runs"] = kNow - kHour;
  std::vector<plugin::OpenCircuit> circuits{{"acme_gate", "/p/libacme.so", 3, kNow - 2 * kMin}};

  auto alerts = evaluate_alerts(quick_policy(), {runs, qs, disk, circuits}, kNow);
  std::map<std::string, Alert> by_id;
  for (const auto& a : alerts) by_id[a.id] = a;
  ASSERT_EQ(by_id.size(), 7u) << json(alerts.size()).dump();
  EXPECT_EQ(by_id["sla_breached:late"].severity, "critical");
  EXPECT_EQ(by_id["sla_breached:late"].link, "/api/queue/late");
  EXPECT_EQ(by_id["sla_breached:late"].since_ms, kNow - kMin);
  EXPECT_EQ(by_id["stuck_run:quiet"].link, "/api/runs/quiet");
  EXPECT_EQ(by_id["stuck_run:quiet"].since_ms, kNow - 5 * kMin + 60 * 1000) << "quiet for the threshold";
  EXPECT_EQ(by_id["gate_failing:acceptance_tests"].link, "/api/runs/g2");
  EXPECT_EQ(by_id["gate_failing:acceptance_tests"].since_ms, kNow - 2 * kMin);
  EXPECT_EQ(by_id["retry_storm"].subject["retries"], 2);
  EXPECT_EQ(by_id["retry_storm"].since_ms, kNow - 9 * kMin + 2) << "the retry that reached the threshold";
  EXPECT_EQ(by_id["approval_deadline:wait"].since_ms, kNow + 30 * kMin - kHour);
  EXPECT_EQ(by_id["retention_over_cap:runs"].since_ms, kNow - kHour);
  EXPECT_EQ(by_id["retention_over_cap:runs"].link, "/api/command-tower/overview");
  EXPECT_EQ(by_id["plugin_circuit_open:acme_gate"].severity, "critical");
  EXPECT_EQ(by_id["plugin_circuit_open:acme_gate"].link, "/api/plugins");
  // Most severe first, then oldest first.
  EXPECT_EQ(alerts[0].id, "plugin_circuit_open:acme_gate");
  EXPECT_EQ(alerts[1].id, "sla_breached:late");
  EXPECT_EQ(alerts[2].id, "retention_over_cap:runs");
  for (const auto& a : alerts) {
    json j = to_json(Alert(a));
    EXPECT_FALSE(j["message"].get<std::string>().empty());
    EXPECT_EQ(j["since"], iso(a.since_ms));
  }

  // Below every threshold, or switched off: nothing.
  AlertPolicy strict = quick_policy();
  strict.stuck_after_sec = 3600;
  strict.gate_in_a_row = 3;
  strict.retry_count = 3;
  strict.approval_within_sec = 60;
  strict.sla_breached.enabled = false;
  strict.retention_over_cap.enabled = false;
  strict.plugin_circuit_open.severity = "info";
  auto fewer = evaluate_alerts(strict, {runs, qs, disk, circuits}, kNow);
  ASSERT_EQ(fewer.size(), 1u);
  EXPECT_EQ(fewer[0].severity, "info");
}

fs::path write_alerts(cp::test::TempDir& d, const std::string& text) {
  cp::test::write_file(d / "policies/alerts.json", text);
  return d.path();
}

TEST(AlertPolicy, SchemaErrorsNameFileLinePointerAndWhatIsAllowed) {
  cp::test::TempDir d;
  std::string why;
  auto dflt = load_alert_policy(d.path(), why);
  ASSERT_TRUE(dflt) << "no file: the defaults";
  EXPECT_EQ(to_json(*dflt), to_json(AlertPolicy{}));

  write_alerts(d, R"({
  "policy": "alerts",
  "rules": {
    "stuck_run": {"no_event_for_sec": 0}
  }
})");
  EXPECT_FALSE(load_alert_policy(d.path(), why));
  EXPECT_NE(why.find("policies/alerts.json:4: /rules/stuck_run/no_event_for_sec"), std::string::npos) << why;

  write_alerts(d, R"({"policy": "alerts", "rules": {"stuck": {}}})");
  EXPECT_FALSE(load_alert_policy(d.path(), why));
  EXPECT_NE(why.find("/rules"), std::string::npos) << why;
  EXPECT_NE(why.find("stuck"), std::string::npos) << "the unknown rule is named: " << why;

  write_alerts(d, R"({"policy": "alerts", "rules": {"retry_storm": {"severity": "loud"}}})");
  EXPECT_FALSE(load_alert_policy(d.path(), why));
  EXPECT_NE(why.find("/rules/retry_storm/severity"), std::string::npos) << why;
  EXPECT_NE(why.find("critical"), std::string::npos) << "what is allowed: " << why;

  write_alerts(d, R"({"policy": "alerts", "rules": {"gate_failing": {"in_a_row": "3"}}})");
  EXPECT_FALSE(load_alert_policy(d.path(), why));
  EXPECT_NE(why.find("/rules/gate_failing/in_a_row"), std::string::npos) << why;

  write_alerts(d, R"({"rules": {}})");
  EXPECT_FALSE(load_alert_policy(d.path(), why));
  EXPECT_NE(why.find("policy"), std::string::npos) << why;

  write_alerts(d, "{not json");
  EXPECT_FALSE(load_alert_policy(d.path(), why));
  EXPECT_NE(why.find("not JSON"), std::string::npos) << why;

  // Fields left out keep their defaults; given ones are read.
  write_alerts(d, R"({"policy": "alerts", "rules": {"gate_failing": {"in_a_row": 5, "enabled": false}}})");
  auto p = load_alert_policy(d.path(), why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->gate_in_a_row, 5);
  EXPECT_FALSE(p->gate_failing.enabled);
  EXPECT_EQ(p->gate_window_sec, 3600);
  EXPECT_EQ(p->gate_failing.severity, "warning");
}

TEST(AlertPolicy, TheShippedFileIsValidSaysTheDefaultsAndIsKnownToValidate) {
  cp::test::TempDir d;
  fs::create_directories(d / "policies");
  fs::copy_file(fs::path(CP_SOURCE_DIR) / "policies/alerts.json", d / "policies/alerts.json");
  std::string why;
  auto p = load_alert_policy(d.path(), why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(to_json(*p), to_json(AlertPolicy{}));
  json doc = json::parse(cp::test::read_file(d / "policies/alerts.json"));
  EXPECT_EQ(contract::detect_schema("policies/alerts.json", doc), "alerts");
  EXPECT_EQ(contract::detect_schema("elsewhere/x.json", doc), "alerts") << "told by its policy field too";
}

TEST(LaneUsage, MeasuresContentWithoutFollowingLinks) {
  cp::test::TempDir d;
  cp::test::write_file(d / "lane/a/one.txt", std::string(100, 'x'));
  cp::test::write_file(d / "lane/b/c/two.txt", std::string(50, 'y'));
  cp::test::write_file(d / "outside/big.txt", std::string(10000, 'z'));
  fs::create_directory_symlink(d / "outside", d / "lane/link");
  retention::LaneUsage u;
  retention::measure_tree(d / "lane", u);
  EXPECT_EQ(u.files, 3u) << "two files and the link itself";
  EXPECT_EQ(u.bytes, 150u + fs::read_symlink(d / "lane/link").string().size());
  EXPECT_TRUE(u.errors.empty());
  retention::LaneUsage none;
  retention::measure_tree(d / "missing", none);
  EXPECT_EQ(none.bytes, 0u);
  EXPECT_TRUE(none.errors.empty()) << "a lane without a folder holds nothing";
}

TEST(LaneUsage, CappedLanesInsideTheRootAreMeasuredAgainstTheirCap) {
  cp::test::TempDir d;
  cp::test::write_file(d / "policies/retention_policy.json", R"({"policy": "retention_policy", "lanes": {
    "runs": {"max_bytes": 10},
    "logs": {"ttl_days": 1},
    "cache": {"max_bytes": 1000000},
    "machine_cache": {"max_bytes": 1}
  }})");
  cp::test::write_file(d / ".runtime-cache/cortexpilot/runs/r1/manifest.json", std::string(64, ' '));
  auto lanes = retention::measure_capped_lanes(d.path());
  ASSERT_EQ(lanes.size(), 2u) << "logs has no cap; machine_cache lives outside the root";
  std::map<std::string, retention::LaneUsage> by;
  for (auto& l : lanes) by[l.lane] = l;
  EXPECT_TRUE(by["runs"].over());
  EXPECT_EQ(by["runs"].bytes, 64u);
  EXPECT_FALSE(by["cache"].over());
  cp::test::write_file(d / "policies/retention_policy.json", R"({"policy": "nope"})");
  EXPECT_ANY_THROW(retention::measure_capped_lanes(d.path()));
}

TEST(PluginBreaker, AnOpenCircuitIsListedAndAlerted) {
  plugin::Registry reg;
  reg.load_file(std::string(CP_MISBEHAVING_DIR) + "/bad_abort.so");
  const plugin::PluginInfo* info = reg.find("bad_abort");
  ASSERT_NE(info, nullptr);
  plugin::IsolatedPlugin worker(*info, {});
  plugin::CallContext ctx("bad_abort");
  for (int i = 0; i <= plugin::IsolatedPlugin::kBreakerThreshold; ++i)
    (void)worker.evaluate(ctx, "{}", std::chrono::seconds(10));
  auto open = plugin::open_circuits();
  auto it = std::find_if(open.begin(), open.end(), [](const auto& c) { return c.plugin_id == "bad_abort"; });
  ASSERT_NE(it, open.end());
  EXPECT_EQ(it->failures, plugin::IsolatedPlugin::kBreakerThreshold);
  EXPECT_GT(it->opened_ms, 0);
  RunStats runs;
  QueueStats q;
  DiskState disk;
  auto alerts = evaluate_alerts(AlertPolicy{}, {runs, q, disk, open}, core::now_ms());
  ASSERT_FALSE(alerts.empty());
  EXPECT_EQ(alerts[0].id, "plugin_circuit_open:bad_abort");
}

TEST(CommandTower, OverviewFromACatalogueOfCraftedBundles) {
  cp::test::TempDir d;
  const int64_t now = core::now_ms();
  auto bundle = [&](const std::string& id, const json& m) {
    json man = m;
    man["run_id"] = id;
    cp::test::write_file(d / ".runtime-cache/cortexpilot/runs" / id / "manifest.json", man.dump());
  };
  for (int i = 0; i < 10; ++i)
    bundle(
        "s" + std::to_string(i),
        {{"status", "sealed"},
         {"verdict", i < 7 ? "success" : "failure"},
         {"created_at", iso(now - (i + 1) * 10 * kMin)},
         {"finished_at", iso(now - i * 10 * kMin)},
         {"duration_ms", (i + 1) * 1000},
         {"gates", json::array({{{"gate_id", "acceptance_tests"}, {"verdict", i < 7 ? "pass" : "fail"}}})}});
  bundle("w", {{"status", "awaiting_approval"},
               {"created_at", iso(now - kMin)},
               {"approval", {{"requested_at", iso(now - kMin)}, {"deadline", iso(now + kHour)}}}});
  bundle("r", {{"status", "running"}, {"created_at", iso(now)}});
  RunCatalog catalog(d.path());
  catalog.refresh();
  CommandTower tower(d.path(), catalog.stats(), AlertPolicy{});
  json o = tower.overview(now);
  EXPECT_EQ(o["runs"]["total"], 12);
  EXPECT_EQ(o["runs"]["live"], 1);
  EXPECT_EQ(o["runs"]["by_state"]["sealed"], 10);
  EXPECT_EQ(o["runs"]["by_verdict"]["success"], 7);
  EXPECT_EQ(o["runs"]["by_verdict"]["failure"], 3);
  EXPECT_EQ(o["throughput"]["last_hour"]["finished"], 7) << "finished 0..60 min ago";
  EXPECT_EQ(o["throughput"]["last_hour"]["succeeded"], 7);
  EXPECT_EQ(o["throughput"]["last_day"]["finished"], 10);
  EXPECT_DOUBLE_EQ(o["throughput"]["last_day"]["success_rate"].get<double>(), 0.7);
  EXPECT_EQ(o["duration_ms"]["p50"], 5000);
  EXPECT_EQ(o["duration_ms"]["p95"], 10000);
  EXPECT_EQ(o["top_failing_gates"][0]["gate_id"], "acceptance_tests");
  EXPECT_EQ(o["top_failing_gates"][0]["failures"], 3);
  EXPECT_EQ(o["approvals"]["awaiting"], 1);
  EXPECT_EQ(o["approvals"]["nearest_deadline"]["run_id"], "w");
  EXPECT_TRUE(o["queue"]["as_of"].is_null()) << "no queue derived yet";
  // A bundle removed from disk leaves the aggregate at the next refresh.
  fs::remove_all(d / ".runtime-cache/cortexpilot/runs/s9");
  fs::last_write_time(d / ".runtime-cache/cortexpilot/runs",
                      fs::last_write_time(d / ".runtime-cache/cortexpilot/runs") + std::chrono::seconds(2));
  catalog.refresh();
  o = tower.overview(now);
  EXPECT_EQ(o["runs"]["by_verdict"]["failure"], 2);
  EXPECT_EQ(o["duration_ms"]["p95"], 9000);
}

}  // namespace
}  // namespace cp::serve
