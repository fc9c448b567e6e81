// Queue actions over the API against a real `cp-host serve`: a waiting item's priority changed by an
// operator moves it in run order (the scheduler starts it first), and is recorded in the queue log; a
// claimed or running item's is refused; cancels of waiting and running items; a viewer's attempts change
// nothing. The CLI twin `cp-host queue priority` goes through the same service.
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

namespace cp::test {
namespace {

struct QueueActions : ::testing::Test {
  RunProject p;
  std::string viewer, op;
  std::unique_ptr<ServeProcess> serve;
  void SetUp() override {
    viewer = add_token(p, "dash", "viewer");
    op = add_token(p, "ops", "operator");
    serve = std::make_unique<ServeProcess>(
        p, std::vector<std::string>{"--concurrency", "1", "--tokens", (p.dir / "tokens.json").string(),
                                    "--repo", p.repo.string()});
    ASSERT_NE(serve->port(), 0) << serve->output();
  }
  HttpResponse post(const std::string& target, const std::string& body, const std::string& token) {
    auto h = bearer(token);
    h["Content-Type"] = "application/json";
    return http(serve->port(), "POST", target, h, body);
  }
  json item(const std::string& id) {
    return json::parse(http(serve->port(), "GET", "/api/queue/" + id, bearer(viewer)).body);
  }
  std::string submit(const std::string& name, const std::vector<std::string>& commands, int priority = 5) {
    json c = queue_contract(p, name, commands);
    auto r = post("/api/runs", json{{"contract", c}, {"priority", priority}}.dump(), op);
    EXPECT_EQ(r.status, 202) << r.body;
    return json::parse(r.body)["item_id"];
  }
  std::vector<std::string> waiting_order() {
    json q = json::parse(http(serve->port(), "GET", "/api/queue?state=queued", bearer(viewer)).body);
    std::vector<std::string> ids;
    for (const auto& it : q["items"]) ids.push_back(it["item_id"]);
    return ids;
  }
  std::string queue_log() const { return read_file(p.dir / ".runtime-cache/cortexpilot/queue.jsonl"); }
  json error_of(const HttpResponse& r) { return json::parse(r.body)["error"]; }
};

TEST_F(QueueActions, APriorityChangeMovesAWaitingItemAndTheSchedulerStartsItFirst) {
  std::string blocker = submit("blocker", {"sleep 30"});
  ASSERT_TRUE(wait_until([&] { return item(blocker)["state"] == "running"; }, std::chrono::seconds(30)));
  std::string a = submit("a", {"true"}, 5);
  std::string b = submit("b", {"true"}, 5);
  std::string c = submit("c", {"true"}, 5);
  ASSERT_EQ(waiting_order(), (std::vector<std::string>{a, b, c}));

  // A viewer may not; nothing moves.
  auto r = post("/api/queue/" + c + "/priority", R"({"priority": 9})", viewer);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(item(c)["priority"], 5);
  EXPECT_EQ(queue_log().find("priority_changed"), std::string::npos);

  r = post("/api/queue/" + c + "/priority", R"({"priority": 9})", op);
  ASSERT_EQ(r.status, 200) << r.body;
  json answer = json::parse(r.body);
  EXPECT_EQ(answer["item_id"], c);
  EXPECT_EQ(answer["changed"], true);
  EXPECT_EQ(answer["item"]["priority"], 9);
  EXPECT_EQ(waiting_order(), (std::vector<std::string>{c, a, b}));
  r = post("/api/queue/" + c + "/priority", R"({"priority": 9})", op);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["changed"], false);
  // Recorded once in the queue log, with who asked.
  std::string log = queue_log();
  auto at = log.find("\"priority_changed\"");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_EQ(log.find("\"priority_changed\"", at + 1), std::string::npos) << "the second ask wrote nothing";
  std::string line = log.substr(log.rfind('\n', at) + 1);
  line = line.substr(0, line.find('\n'));
  json op_line = json::parse(line);
  EXPECT_EQ(op_line["item_id"], c);
  EXPECT_EQ(op_line["priority"], 9);
  EXPECT_EQ(op_line["by"], "ops");

  // The CLI twin, through the same service: b goes ahead of a.
  Ran cli = host({"--root", p.dir.path().string(), "queue", "priority", b, "7"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(waiting_order(), (std::vector<std::string>{c, b, a}));
  EXPECT_EQ(host({"--root", p.dir.path().string(), "queue", "priority", b, "12"}).exit_code, 2);
  cli = host({"--root", p.dir.path().string(), "queue", "priority", blocker, "1"});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.err.find("running"), std::string::npos) << cli.err;

  // Bad bodies are refused with what to fix; a running item's priority no longer decides anything.
  for (const char* bad : {R"({"priority": 10})", R"({"priority": "9"})", R"({"priority": 2.5})", R"({})",
                          R"({"priority": 3, "extra": 1})"}) {
    r = post("/api/queue/" + a + "/priority", bad, op);
    EXPECT_EQ(r.status, 422) << bad << ": " << r.body;
    EXPECT_TRUE(error_of(r)["details"].contains("pointer")) << r.body;
  }
  EXPECT_EQ(post("/api/queue/" + a + "/priority", "[9]", op).status, 400);
  EXPECT_EQ(item(a)["priority"], 5) << "no refused body changed it";
  r = post("/api/queue/" + blocker + "/priority", R"({"priority": 1})", op);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(error_of(r)["code"], "not_waiting");
  EXPECT_EQ(error_of(r)["details"]["state"], "running");
  EXPECT_EQ(post("/api/queue/q-nope/priority", R"({"priority": 1})", op).status, 404);

  // The blocker is cancelled through the new route; the rest run in their new order.
  r = post("/api/queue/" + blocker + "/cancel", R"({"reason": "make room"})", op);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(json::parse(r.body)["outcome"], "cancel_requested");
  json q;
  ASSERT_TRUE(wait_until(
      [&] {
        q = json::parse(http(serve->port(), "GET", "/api/queue", bearer(viewer)).body);
        return q["counts"].value("done", 0) == 4;
      },
      std::chrono::seconds(90)))
      << q.dump(2);
  std::map<std::string, std::string> started;
  for (const auto& it : q["items"])
    if (it["item_id"] != blocker) started[it["item_id"]] = it["attempts"][0]["started_at"];
  EXPECT_LT(started[c], started[b]);
  EXPECT_LT(started[b], started[a]);
  EXPECT_EQ(item(blocker)["status"], "cancelled");
}

TEST_F(QueueActions, CancelEndsAWaitingItemOnceAndAViewerCannot) {
  std::string blocker = submit("blocker", {"sleep 30"});
  ASSERT_TRUE(wait_until([&] { return item(blocker)["state"] == "running"; }, std::chrono::seconds(30)));
  std::string w = submit("w", {"true"});
  auto r = post("/api/queue/" + w + "/cancel", "", viewer);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(item(w)["state"], "queued") << "the viewer's cancel did nothing";
  EXPECT_EQ(post("/api/queue/" + w + "/cancel", R"({"reason": 7})", op).status, 422);
  EXPECT_EQ(post("/api/queue/" + w + "/cancel", R"({"why": "x"})", op).status, 422);
  EXPECT_EQ(item(w)["state"], "queued");
  r = post("/api/queue/" + w + "/cancel", "", op);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(json::parse(r.body)["outcome"], "cancelled");
  json it = item(w);
  EXPECT_EQ(it["state"], "cancelled");
  EXPECT_EQ(it["reason"], "cancelled through the API");
  EXPECT_TRUE(it["attempts"].empty()) << "it never ran";
  r = post("/api/queue/" + w + "/cancel", "", op);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(error_of(r)["code"], "already_ended");
  EXPECT_EQ(post("/api/queue/q-nope/cancel", "", op).status, 404);
  ASSERT_EQ(post("/api/queue/" + blocker + "/cancel", "", op).status, 202);
  ASSERT_TRUE(wait_until([&] { return item(blocker)["state"] == "done"; }, std::chrono::seconds(30)));
  EXPECT_EQ(item(blocker)["status"], "cancelled");
}

}  // namespace
}  // namespace cp::test
