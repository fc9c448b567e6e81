// The hash-chained event log: appends verify, any edit is caught, a torn tail is truncated on reopen.
#include "store/event_log.hpp"
#include "store/bundle.hpp"
#include "store/event_check.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>
#include <vector>

using cp::store::EventLog;
using nlohmann::json;

TEST(EventLog, AppendsFormAChainThatVerifiesAndSurvivesReopen) {
  cp::test::TempDir d;
  auto file = d / "events.jsonl";
  {
    EventLog log(file, "run-1");
    log.append("RUN_STARTED", {{"task_id", "t"}});
    log.append("GATE_PASSED", {{"gate_id", "g"}});
  }
  EventLog again(file, "run-1");
  EXPECT_EQ(again.count(), 2u);
  auto e = again.append("RUN_SEALED", {{"verdict", "success"}});
  EXPECT_EQ(e["seq"], 3);
  auto c = cp::store::verify_event_log(file);
  EXPECT_TRUE(c.ok) << c.reason;
  EXPECT_EQ(c.events, 3u);
  EXPECT_EQ(c.last_hash, e["hash"]);
}

// Group commit: appends from several threads while the flusher runs; sync() returns with every event
// written, and the log verifies line by line (each line is exactly the host's form of its event).
TEST(EventLog, GroupCommittedAppendsFromManyThreadsVerifyAfterSync) {
  cp::test::TempDir d;
  auto file = d / "events.jsonl";
  EventLog log(file, "run-1", EventLog::Durability::group);
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&log, t] {
      for (int i = 0; i < 500; ++i) log.append("STEP", {{"t", t}, {"i", i}});
    });
  for (auto& w : writers) w.join();
  log.sync();
  auto c = cp::store::verify_event_log(file);
  EXPECT_TRUE(c.ok) << c.reason;
  EXPECT_EQ(c.events, 2000u);
  EXPECT_EQ(c.last_hash, log.last_hash());
  // sync() with nothing new returns at once; the log goes on after it.
  log.sync();
  log.append("RUN_SEALED", {{"verdict", "success"}});
  log.sync();
  EXPECT_EQ(cp::store::verify_event_log(file).events, 2001u);
}

// A group log closed without sync(): the destructor leaves every event in the file.
TEST(EventLog, AGroupLogClosedWithoutSyncKeepsEveryEvent) {
  cp::test::TempDir d;
  auto file = d / "events.jsonl";
  {
    EventLog log(file, "run-1", EventLog::Durability::group);
    for (int i = 0; i < 300; ++i) log.append("STEP", {{"i", i}});
  }
  auto c = cp::store::verify_event_log(file);
  EXPECT_TRUE(c.ok) << c.reason;
  EXPECT_EQ(c.events, 300u);
}

// The line is put together from pieces rather than dumped whole: names and payloads that need escaping
// (quotes, backslashes, control characters, bytes that are not UTF-8) must still give the very bytes the
// verifier expects, and the returned event must hash to its hash.
TEST(EventLog, LinesOfEventsThatNeedEscapingVerify) {
  cp::test::TempDir d;
  auto file = d / "events.jsonl";
  const std::string odd = std::string("q\"b\\s\n\t\x01 \xff\xfe caf\xc3\xa9 ") + "\u2028";
  {
    EventLog log(file, "run-\xc3\xa9\"x", EventLog::Durability::none);
    auto e = log.append("TYPE " + odd, {{"text", odd}, {odd, {1, 2.5, nullptr, true}}});
    EXPECT_EQ(e["hash"], cp::store::event_hash(e));
    log.append("PLAIN", json::array({1, 2}));  // not an object: wrapped as {"value": ...}
  }
  auto c = cp::store::verify_event_log(file);
  EXPECT_TRUE(c.ok) << c.reason;
  EXPECT_EQ(c.events, 2u);
  EventLog again(file, "run-\xc3\xa9\"x");
  EXPECT_EQ(again.count(), 2u);
}

TEST(EventLog, EditedPayloadReorderedOrDroppedLinesAreDetected) {
  cp::test::TempDir d;
  auto file = d / "events.jsonl";
  {
    EventLog log(file, "run-1");
    for (int i = 0; i < 3; ++i) log.append("STEP", {{"i", i}});
  }
  std::string text = cp::test::read_file(file);
  std::string edited = text;
  edited.replace(edited.find("\"i\":1"), 5, "\"i\":7");
  cp::test::write_file(file, edited);
  auto c = cp::store::verify_event_log(file);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.bad_line, 2u);
  EXPECT_NE(c.reason.find("hash mismatch"), std::string::npos);
  EXPECT_THROW(EventLog(file, "run-1"), std::runtime_error);  // never appended to

  size_t first_nl = text.find('\n');
  cp::test::write_file(file, text.substr(first_nl + 1));  // first event dropped
  c = cp::store::verify_event_log(file);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.bad_line, 1u);
}

TEST(EventLog, TornLastLineIsTruncatedOnReopenAndReported) {
  cp::test::TempDir d;
  auto file = d / "events.jsonl";
  { EventLog(file, "run-1").append("STEP", {{"i", 0}}); }
  { std::ofstream(file, std::ios::app) << "{\"seq\":2,\"ts\""; }
  auto c = cp::store::verify_event_log(file);
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(c.torn_tail);
  EventLog log(file, "run-1");
  EXPECT_EQ(log.truncated_bytes(), 13u);
  log.append("STEP", {{"i", 1}});
  c = cp::store::verify_event_log(file);
  EXPECT_TRUE(c.ok) << c.reason;
  EXPECT_EQ(c.events, 2u);
}

TEST(EventLog, HostileNestingInALineIsReportedNotACrash) {
  cp::test::TempDir d;
  auto file = d / "events.jsonl";
  { EventLog(file, "run-1").append("STEP", {{"i", 0}}); }
  {
    std::ofstream(file, std::ios::app)
        << "{\"seq\":2,\"x\":" << std::string(100000, '[') << std::string(100000, ']') << "}\n";
  }
  auto c = cp::store::verify_event_log(file);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.bad_line, 2u);
  EXPECT_NE(c.reason.find("nested too deep"), std::string::npos);
}

TEST(EventCheck, PluginEventsAreCheckedAgainstPayloadSchemasAndSize) {
  cp::test::TempDir root;
  auto bundle = cp::store::Bundle::create(root.path(), "r-1", json::object(),
                                          {{"schema_version", 1}, {"run_id", "r-1"}, {"status", "created"}});
  auto sink = cp::store::plugin_event_sink(*bundle);
  EXPECT_TRUE(sink("PLUGIN_NOTE", R"({"text":"fine"})"));
  EXPECT_FALSE(sink("PLUGIN_NOTE", "{\"blob\":\"" + std::string(2u << 20, 'x') + "\"}"));  // > 1 MiB
  EXPECT_FALSE(
      sink("RUN_SEALED", R"({"status":"sealed","verdict":"maybe","reason":"x"})"));  // breaks its schema
  EXPECT_FALSE(sink("PLUGIN_NOTE", "not json"));
  EXPECT_EQ(bundle->events().count(), 1u);
  EXPECT_TRUE(cp::store::verify_event_log(bundle->dir() / "events.jsonl").ok);
}

// The browser runner's events: a plugin may log them, and only with the payloads their schemas give.
TEST(EventCheck, BrowserEventsHavePayloadSchemasAndPluginsMayLogThem) {
  cp::test::TempDir root;
  auto bundle = cp::store::Bundle::create(root.path(), "r-b", json::object(),
                                          {{"schema_version", 1}, {"run_id", "r-b"}, {"status", "created"}});
  auto sink = cp::store::plugin_event_sink(*bundle);
  const std::pair<const char*, const char*> good[] = {
      {"BROWSER_NAVIGATED", R"({"task":"home","url":"http://127.0.0.1:8000/","status":200,"ok":true})"},
      {"BROWSER_NAVIGATED", R"({"task":"home","url":"about:blank","status":0,"ok":false})"},
      {"BROWSER_STEP",
       R"({"task":"home","index":2,"action":"click","name":"go","status":"failed","duration_ms":31,"detail":"no #go"})"},
      {"BROWSER_CONSOLE_ERROR",
       R"({"task":"home","text":"TypeError: x","url":"http://127.0.0.1:8000/a.js","line":3})"},
      {"BROWSER_REQUEST_BLOCKED",
       R"({"task":"home","url":"https://tracker.example/p.gif","initiator":"parser","resource_type":"Image","reason":"origin not allowed"})"},
      {"BROWSER_ASSERTION",
       R"({"task":"home","index":1,"name":"served","passed":true,"expected":"http_status 200","seen":"200"})"}};
  for (const auto& [type, payload] : good) {
    EXPECT_FALSE(cp::store::host_owned_event(type)) << type;
    EXPECT_EQ(cp::store::check_event(type, json::parse(payload)), "") << type << " " << payload;
    EXPECT_TRUE(sink(type, payload)) << type;
  }
  const std::string long_text(2001, 'x');
  const std::pair<std::string, std::string> bad[] = {
      {"BROWSER_NAVIGATED", R"({"task":"home","url":"http://127.0.0.1:8000/","status":"200","ok":true})"},
      {"BROWSER_NAVIGATED", R"({"task":"home","url":"http://127.0.0.1:8000/","status":200})"},
      {"BROWSER_STEP",
       R"({"task":"home","index":0,"action":"click","name":"go","status":"ok","duration_ms":1})"},
      {"BROWSER_STEP",
       R"({"task":"../x","index":0,"action":"click","name":"go","status":"passed","duration_ms":1})"},
      {"BROWSER_CONSOLE_ERROR", R"({"task":"home","text":")" + long_text + R"("})"},
      {"BROWSER_REQUEST_BLOCKED",
       R"({"task":"home","url":"https://t.example/","initiator":"parser","resource_type":"Image"})"},
      {"BROWSER_REQUEST_BLOCKED", R"({"task":"home","url":"https://t.example/)" + long_text +
                                      R"(","initiator":"parser","resource_type":"Image","reason":"r"})"},
      {"BROWSER_ASSERTION",
       R"({"task":"home","index":1,"name":"s","passed":"yes","expected":"e","seen":"s"})"},
      {"BROWSER_ASSERTION", R"({"task":"home","index":1,"name":"s","passed":false,"expected":"e","seen":")" +
                                long_text + R"("})"}};
  for (const auto& [type, payload] : bad) {
    EXPECT_NE(cp::store::check_event(type, json::parse(payload)), "")
        << type << " " << payload.substr(0, 120);
    EXPECT_FALSE(sink(type, payload)) << type;
  }
  EXPECT_EQ(bundle->events().count(), std::size(good));
  EXPECT_TRUE(cp::store::verify_event_log(bundle->dir() / "events.jsonl").ok);
}
