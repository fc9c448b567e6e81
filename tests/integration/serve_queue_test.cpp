// The scheduler of `cp-host serve`: order, limits, cancels, and kill -9 of serve with work in flight.
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

namespace cp::test {
namespace {

json queue_of(const RunProject& p) {
  Ran r = host({"--root", p.dir.path().string(), "queue", "list", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

bool all_ended(const json& q) {
  for (const auto& it : q["items"])
    if (it["state"] != "done" && it["state"] != "cancelled") return false;
  return !q["items"].empty();
}

// A live process whose command line names queue item `item` (the child `cp-host run` of serve).
bool child_alive(const std::string& item) {
  bool alive = false;
  for_each_live_process([&](const fs::path& proc) {
    std::string cmd = proc_file(proc, "cmdline");
    if (cmd.find(item) != std::string::npos && cmd.find("--queue-item") != std::string::npos) alive = true;
  });
  return alive;
}

TEST(ServeQueue, HigherPriorityRunsFirstThenFifo) {
  RunProject p;
  // Queued while no serve runs: the CLI and serve share the queue file.
  const std::vector<std::string> fix{"sed -i s/Helo/Hello/ src/greeting.sh"};
  std::string low = submit_cli(p, queue_contract(p, "low", fix), "low", {"--priority", "1"});
  std::string high = submit_cli(p, queue_contract(p, "high", fix), "high", {"--priority", "9"});
  std::string mid1 = submit_cli(p, queue_contract(p, "mid1", fix), "mid1", {"--priority", "5"});
  std::string mid2 = submit_cli(p, queue_contract(p, "mid2", fix), "mid2", {"--priority", "5"});
  json before = queue_of(p);
  ASSERT_EQ(before["items"].size(), 4u);
  // `queue list` shows waiting items in the order they will run.
  std::vector<std::string> listed;
  for (const auto& it : before["items"]) listed.push_back(it["item_id"]);
  EXPECT_EQ(listed, (std::vector<std::string>{high, mid1, mid2, low}));
  EXPECT_TRUE(before["items"][0]["eligible"]);

  ServeProcess serve(p, {"--concurrency", "1"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  json q;
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_of(p)); }, std::chrono::seconds(90))) << q.dump(2);
  std::vector<std::pair<std::string, std::string>> started;
  for (const auto& it : q["items"]) {
    EXPECT_EQ(it["status"], "success") << it.dump(2);
    started.emplace_back(it["attempts"][0]["started_at"], it["item_id"]);
  }
  std::sort(started.begin(), started.end());
  std::vector<std::string> order;
  for (const auto& s : started) order.push_back(s.second);
  EXPECT_EQ(order, (std::vector<std::string>{high, mid1, mid2, low}));
}

TEST(ServeQueue, ConcurrencyLimitIsHonoured) {
  RunProject p;
  std::string op = add_token(p, "ops", "operator");
  ServeProcess serve(p, {"--concurrency", "2", "--tokens", (p.dir / "tokens.json").string(), "--repo",
                         p.repo.string(), "--open-reads"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  for (int i = 0; i < 5; ++i) {
    // Paths of their own: path locks (serve_locks_test.cpp) would keep runs of one path apart.
    json c = queue_contract(p, "sleepy" + std::to_string(i), {"sleep 1"});
    c["allowed_paths"] = {"lane" + std::to_string(i) + "/"};
    auto r = http(serve.port(), "POST", "/api/runs", bearer(op), json{{"contract", c}}.dump());
    ASSERT_EQ(r.status, 202) << r.body;
  }
  int most = 0;
  json q;
  ASSERT_TRUE(wait_until(
      [&] {
        q = json::parse(http(serve.port(), "GET", "/api/queue").body);
        int active = q["counts"].value("running", 0) + q["counts"].value("claimed", 0);
        most = std::max(most, active);
        return all_ended(q);
      },
      std::chrono::seconds(120)));
  EXPECT_EQ(most, 2) << "the limit was not reached, or was exceeded";
  // From the recorded attempt times too: no moment had three runs.
  std::vector<std::pair<std::string, int>> edges;
  for (const auto& it : q["items"]) {
    edges.emplace_back(it["attempts"][0]["started_at"], +1);
    edges.emplace_back(it["attempts"][0]["finished_at"], -1);
  }
  std::sort(edges.begin(), edges.end(),
            [](auto& a, auto& b) { return a.first != b.first ? a.first < b.first : a.second < b.second; });
  int live = 0, peak = 0;
  for (const auto& [t, d] : edges) peak = std::max(peak, live += d);
  EXPECT_LE(peak, 2);
}

TEST(ServeQueue, CancelWaitingAndRunningItems) {
  RunProject p;
  std::string op = add_token(p, "ops", "operator");
  ServeProcess serve(p, {"--concurrency", "1", "--tokens", (p.dir / "tokens.json").string(), "--repo",
                         p.repo.string(), "--open-reads"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  auto submit = [&](const std::string& name) {
    auto r = http(serve.port(), "POST", "/api/runs", bearer(op),
                  json{{"contract", queue_contract(p, name, {"sleep 30"})}}.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    return json::parse(r.body)["item_id"].get<std::string>();
  };
  std::string running = submit("long");
  std::string waiting = submit("waiting");
  std::string rid;
  ASSERT_TRUE(wait_until(
      [&] {
        json it = json::parse(http(serve.port(), "GET", "/api/queue/" + running).body);
        rid = it.value("run_id", "");
        return it["state"] == "running" && !rid.empty();
      },
      std::chrono::seconds(20)));
  // The waiting one through the API: it ends at once, never runs.
  auto c1 = http(serve.port(), "POST", "/api/runs/" + waiting + "/cancel", bearer(op),
                 R"({"reason": "not needed"})");
  ASSERT_EQ(c1.status, 202) << c1.body;
  EXPECT_EQ(json::parse(c1.body)["outcome"], "cancelled");
  // The running one from the command line: serve stops its run, which seals as cancelled.
  Ran c2 = host({"--root", p.dir.path().string(), "queue", "cancel", running});
  EXPECT_EQ(c2.exit_code, 0) << c2.err;
  json q;
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_of(p)); }, std::chrono::seconds(30))) << q.dump(2);
  for (const auto& it : q["items"]) {
    if (it["item_id"] == waiting) {
      EXPECT_EQ(it["state"], "cancelled");
      EXPECT_EQ(it["reason"], "not needed");
      EXPECT_TRUE(it["attempts"].empty());
    } else {
      EXPECT_EQ(it["state"], "done");
      EXPECT_EQ(it["status"], "cancelled") << it.dump(2);
    }
  }
  json man = json::parse(read_file(p.dir / ".runtime-cache/cortexpilot/runs" / rid / "manifest.json"));
  EXPECT_EQ(man["verdict"], "cancelled");
  EXPECT_TRUE(processes_of_runs({rid}).empty());
}

TEST(ServeQueue, DependenciesWaitAndAFailedOneCancelsItsDependents) {
  RunProject p;
  std::string first = submit_cli(p, queue_contract(p, "first", {"false"}), "first");
  std::string second = submit_cli(p, queue_contract(p, "second", {"true"}), "second", {"--after", first});
  json q = queue_of(p);
  EXPECT_EQ(q["items"][1]["waiting_on"], "waiting for item " + first) << q.dump(2);
  ServeProcess serve(p, {});
  ASSERT_NE(serve.port(), 0);
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_of(p)); }, std::chrono::seconds(60))) << q.dump(2);
  for (const auto& it : q["items"]) {
    if (it["item_id"] == second) {
      EXPECT_EQ(it["state"], "cancelled");
      EXPECT_NE(it["reason"].get<std::string>().find("dependency " + first), std::string::npos) << it.dump();
    }
  }
}

TEST(ServeQueue, KillNineWithWorkInFlightEndsEveryItemExactlyOnce) {
  RunProject p;
  // Two long items that may retry once, one long item that may not, and three quick ones behind them, each
  // on paths of its own (path locks would otherwise run them one at a time).
  auto own_paths = [&](const std::string& task, std::vector<std::string> commands, int retries) {
    json c = queue_contract(p, task, std::move(commands), retries);
    c["allowed_paths"] = {task + "/"};
    return c;
  };
  std::vector<std::string> items;
  items.push_back(submit_cli(p, own_paths("retry-a", {"sleep 4"}, 1), "a"));
  items.push_back(submit_cli(p, own_paths("no-retry", {"sleep 4"}, 0), "b", {"--priority", "8"}));
  items.push_back(submit_cli(p, own_paths("retry-c", {"sleep 4"}, 1), "c"));
  for (int i = 0; i < 3; ++i)
    items.push_back(
        submit_cli(p, own_paths("quick" + std::to_string(i), {"true"}, 0), "q" + std::to_string(i)));

  auto serve = std::make_unique<ServeProcess>(p, std::vector<std::string>{"--concurrency", "2"});
  ASSERT_NE(serve->port(), 0) << serve->output();
  json q;
  std::set<std::string> interrupted;
  ASSERT_TRUE(wait_until(
      [&] {
        q = queue_of(p);
        interrupted.clear();
        for (const auto& it : q["items"])
          if (it["state"] == "running" && it.contains("run_id") &&
              fs::exists(p.dir / ".runtime-cache/cortexpilot/runs" / it["run_id"].get<std::string>() /
                         "events.jsonl"))
            interrupted.insert(it["item_id"]);
        return interrupted.size() == 2;
      },
      std::chrono::seconds(30)))
      << q.dump(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the runners are sleeping now
  serve->kill9();
  // The children die with serve.
  for (const auto& it : interrupted)
    EXPECT_TRUE(wait_until([&] { return !child_alive(it); }, std::chrono::seconds(10)));

  serve = std::make_unique<ServeProcess>(p, std::vector<std::string>{"--concurrency", "2"});
  ASSERT_NE(serve->port(), 0) << serve->output();
  EXPECT_NE(serve->output().find("ended 2 attempt(s)"), std::string::npos) << serve->output();
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_of(p)); }, std::chrono::seconds(120))) << q.dump(2);
  serve->stop();

  EXPECT_TRUE(q["problems"].empty()) << q["problems"].dump(2);  // queue.jsonl replays cleanly
  ASSERT_EQ(q["items"].size(), items.size());
  std::set<std::string> run_ids;
  for (const auto& it : q["items"]) {
    std::string id = it["item_id"];
    SCOPED_TRACE(it.dump(2));
    EXPECT_EQ(it["state"], "done");
    // Attempts are numbered 1..n, each with its own run, and only the last may be unfinished... none is.
    for (size_t a = 0; a < it["attempts"].size(); ++a) {
      const json& at = it["attempts"][a];
      EXPECT_EQ(at["attempt"], a + 1);
      EXPECT_TRUE(at.contains("finished_at"));
      ASSERT_TRUE(at.contains("run_id"));
      EXPECT_TRUE(run_ids.insert(at["run_id"].get<std::string>()).second) << "a run id was used twice";
    }
    if (interrupted.count(id)) {
      const json& first = it["attempts"][0];
      EXPECT_EQ(first["status"], "error");
      EXPECT_NE(first["reason"].get<std::string>().find("host_interrupted"), std::string::npos);
      bool may_retry = it["max_retries"] == 1;
      EXPECT_EQ(it["attempts"].size(), may_retry ? 2u : 1u);
      EXPECT_EQ(it["status"], may_retry ? "failure" : "error");  // `sleep 4` leaves the greeting test failing
    } else {
      EXPECT_EQ(it["attempts"].size(), 1u);
    }
  }
  // Every run's bundle is sealed and its chain verifies; nothing the runs started is still alive.
  for (const auto& rid : run_ids) {
    json man = json::parse(read_file(p.dir / ".runtime-cache/cortexpilot/runs" / rid / "manifest.json"),
                           nullptr, false);
    EXPECT_EQ(man["status"], "sealed") << rid;
    expect_valid("run_manifest", man, rid);
    Ran v = p.runs({"verify", rid});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  }
  EXPECT_TRUE(processes_of_runs(run_ids).empty());
  if (HasFailure()) {
    for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/queue/logs"))
      ADD_FAILURE() << e.path().filename().string() << ":\n" << read_file(e.path());
    ADD_FAILURE() << serve->output();
  }
  // Every line of queue.jsonl fits its schema.
  std::ifstream in(p.dir / ".runtime-cache/cortexpilot/queue.jsonl");
  std::string line;
  while (std::getline(in, line)) expect_valid("queue_item", json::parse(line), line);
}

TEST(ServeQueue, SubmitFromTheCommandLineChecksLikeValidate) {
  RunProject p;
  json bad = queue_contract(p, "bad", {"true"});
  bad["runtime_options"]["pack"] = "nonexistent";
  write_file(p.dir / "bad.json", bad.dump(2));
  Ran r = host({"--root", p.dir.path().string(), "queue", "submit", (p.dir / "bad.json").string(), "--repo",
                p.repo.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("nonexistent"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was queued"), std::string::npos);
  EXPECT_TRUE(queue_of(p)["items"].empty());
  Ran show = host({"--root", p.dir.path().string(), "queue", "show", "q-missing"});
  EXPECT_EQ(show.exit_code, 1);
}

// The queue validates a copy it keeps; its lines are not the user's. Diagnostics give the user's file's
// lines.
TEST(ServeQueue, SubmitDiagnosticsPointAtTheLinesOfTheUsersFile) {
  RunProject p;
  json bad = queue_contract(p, "bad", {"true"});
  bad["allowed_paths"] = "src/";               // must be an array
  write_file(p.dir / "bad.json", bad.dump());  // one line: every diagnostic is on line 1
  Ran r = host({"--root", p.dir.path().string(), "queue", "submit", (p.dir / "bad.json").string(), "--repo",
                p.repo.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::string where = (p.dir / "bad.json").string() + ":1: error [type] /allowed_paths";
  EXPECT_NE(r.err.find(where), std::string::npos) << r.err;
  EXPECT_TRUE(queue_of(p)["items"].empty());
}

TEST(ServeQueue, SubmitRefusesAFolderThatIsNotAGitRepository) {
  RunProject p;
  fs::create_directories(p.dir / "plain");
  write_file(p.dir / "c.json", queue_contract(p, "c", {"true"}).dump(2));
  Ran r = host({"--root", p.dir.path().string(), "queue", "submit", (p.dir / "c.json").string(), "--repo",
                (p.dir / "plain").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("not a git repository"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was queued"), std::string::npos) << r.err;
  EXPECT_TRUE(queue_of(p)["items"].empty());
}

// An attempt whose `cp-host run` ends without a bundle (here: its pack broke after the submit) carries what
// the run said, over the API; the log file it is read from is served by no route.
TEST(ServeQueue, RefusedAttemptShowsWhyOverTheApi) {
  RunProject p;
  json c = queue_contract(p, "refused", {"true"});
  std::string item = submit_cli(p, c, "refused");
  std::string pack_file = "packs/" + c["runtime_options"]["pack"].get<std::string>() + ".json";
  json pack = json::parse(read_file(p.dir / pack_file));
  pack["gates"].push_back({{"plugin", "no_such_gate"}});
  write_file(p.dir / pack_file, pack.dump(2));
  std::string op = add_token(p, "ops", "operator");
  ServeProcess serve(
      p, {"--open-reads", "--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()});
  ASSERT_NE(serve.port(), 0) << serve.output();
  // A submission over the API is refused up front, at the gate's entry in the pack (not under /contract).
  auto refused = http(serve.port(), "POST", "/api/runs", bearer(op), json{{"contract", c}}.dump());
  EXPECT_EQ(refused.status, 422) << refused.body;
  bool at_gate = false;
  const json answer = json::parse(refused.body);
  for (const auto& d : answer["error"]["details"])
    if (d["pointer"] == "/gates/" + std::to_string(pack["gates"].size() - 1) + "/plugin" &&
        d["file"].get<std::string>().find(pack_file) != std::string::npos)
      at_gate = true;
  EXPECT_TRUE(at_gate) << refused.body;
  json got;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = http(serve.port(), "GET", "/api/queue/" + item);
        got = json::parse(r.body, nullptr, false);
        return r.status == 200 && got.value("state", "") == "done";
      },
      std::chrono::seconds(60)))
      << got.dump(2);
  EXPECT_EQ(got["status"], "error");
  ASSERT_TRUE(got.contains("error")) << got.dump(2);
  EXPECT_NE(got["error"].get<std::string>().find("no_such_gate"), std::string::npos) << got.dump(2);
  EXPECT_EQ(got["attempts"][0]["error"], got["error"]);
  // The list route carries it too, and the log line fits the queue schema.
  json list = json::parse(http(serve.port(), "GET", "/api/queue").body);
  ASSERT_EQ(list["items"].size(), 1u);  // the refused submission queued nothing
  EXPECT_EQ(list["items"][0]["error"], got["error"]);
  std::ifstream in(p.dir / ".runtime-cache/cortexpilot/queue.jsonl");
  std::string line;
  while (std::getline(in, line)) expect_valid("queue_item", json::parse(line), line);
}

TEST(TokensCli, ListPrintsEveryToken) {
  RunProject p;
  add_token(p, "alice", "viewer");
  add_token(p, "bob", "operator");
  Ran r = host({"tokens", "list", "--file", (p.dir / "tokens.json").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("alice\tviewer\t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bob\toperator\t"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cp::test
