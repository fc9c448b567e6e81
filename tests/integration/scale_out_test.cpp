// Several `cp-host serve` nodes sharing one queue in a real PostgreSQL (unit/pg_server.hpp): workers that
// each run their share, an API-only node that sees everything, a worker killed with runs in flight whose
// runs are taken over once its lease lapses, and a paused worker whose late results are fenced off.
#include "db/pg_connection.hpp"
#include "integration/serve_fixture.hpp"
#include "unit/pg_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include <unistd.h>

namespace cp::test {
namespace {

// A migrated database of its own.
std::string migrated_database() {
  std::string url = PgServer::shared().fresh_database();
  Ran r = host({"db", "migrate", "--store", url});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return url;
}

// A contract that runs `command` and may touch only its own folder (so items lock disjoint paths and may
// run side by side on any node).
json own_contract(const RunProject& p, const std::string& task_id, const std::string& command,
                  int retries = 0) {
  json c = queue_contract(p, task_id, {command}, retries);
  c["allowed_paths"] = json::array({"work/" + task_id + "/"});
  c["acceptance_tests"] = json::array({{{"name", "noop"}, {"cmd", "true"}}});
  return c;
}

std::string submit(const RunProject& p, const std::string& store, const json& contract,
                   const std::string& name) {
  write_file(p.dir / (name + ".json"), contract.dump(2));
  Ran r = run_env({CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", p.dir.path().string(), "queue",
                   "submit", (p.dir / (name + ".json")).string(), "--repo", p.repo.string(), "--json"},
                  {"CP_HOST_STORE=" + store});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return json::parse(r.out, nullptr, false).value("item_id", "");
}

json queue_via(uint16_t port) {
  HttpResponse r = http(port, "GET", "/api/queue");
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body, nullptr, false);
}

bool all_ended(const json& q, size_t n) {
  if (!q.contains("items") || q["items"].size() != n) return false;
  for (const auto& it : q["items"])
    if (it["state"] != "done" && it["state"] != "cancelled") return false;
  return true;
}

// How many `finished` operations the log holds for each item, by status.
std::map<std::string, std::map<std::string, int>> finishes(const std::string& store) {
  db::PgConnection c(store);
  db::PgRows r = c.exec(
      "SELECT item_id, op->>'status', count(*) FROM cp_queue_ops WHERE op->>'op' = 'finished' "
      "GROUP BY 1, 2");
  std::map<std::string, std::map<std::string, int>> out;
  for (int i = 0; i < r.size(); ++i) out[r.text(i, 0)][r.text(i, 1)] = static_cast<int>(r.integer(i, 2));
  return out;
}

// Every run a node lists (GET /api/runs, page by page): run id -> its listing row.
std::map<std::string, json> listed_runs(uint16_t port) {
  std::map<std::string, json> out;
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    HttpResponse r = http(port, "GET", "/api/runs?limit=100" + (cursor.empty() ? "" : "&cursor=" + cursor));
    if (r.status != 200) break;
    json j = json::parse(r.body, nullptr, false);
    for (const auto& run : j["runs"]) out[run.value("run_id", "")] = run;
    if (!j["next_cursor"].is_string()) break;
    cursor = j["next_cursor"];
  }
  return out;
}

// The lines of a file (a bundle's events.jsonl).
std::vector<std::string> lines_of(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

fs::path bundle_of(const RunProject& p, const std::string& run_id) {
  return p.dir / ".runtime-cache/cortexpilot/runs" / run_id;
}

std::vector<std::string> node_args(const std::string& store, const std::string& id,
                                   std::vector<std::string> more) {
  std::vector<std::string> a{"--store", store, "--worker-id", id, "--open-reads"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

TEST(ScaleOut, ThreeWorkersAndAnApiNodeRunEveryItemExactlyOnce) {
#if defined(__SANITIZE_ADDRESS__)
  const size_t kRuns = 60;  // the sanitizers make each run several times slower; the release build runs 300
#else
  const size_t kRuns = 300;
#endif
  const std::string store = migrated_database();
  RunProject api_root, w1_root, w2_root, w3_root;
  ServeProcess api(api_root, node_args(store, "api-node", {"--no-scheduler"}));
  ASSERT_NE(api.port(), 0) << api.output();
  ServeProcess w1(w1_root, node_args(store, "worker-1", {"--concurrency", "2"}));
  ServeProcess w2(w2_root, node_args(store, "worker-2", {"--concurrency", "2"}));
  ServeProcess w3(w3_root, node_args(store, "worker-3", {"--concurrency", "2"}));
  for (ServeProcess* w : {&w1, &w2, &w3}) ASSERT_NE(w->port(), 0) << w->output();

  // The API node knows every node, whichever it is asked.
  HttpResponse workers = http(api.port(), "GET", "/api/workers");
  ASSERT_EQ(workers.status, 200) << workers.body;
  json wj = json::parse(workers.body);
  std::map<std::string, bool> sched;
  for (const auto& w : wj["workers"]) {
    EXPECT_TRUE(w["alive"]) << w.dump();
    sched[w["worker_id"]] = w["scheduler"];
  }
  EXPECT_EQ(sched, (std::map<std::string, bool>{
                       {"api-node", false}, {"worker-1", true}, {"worker-2", true}, {"worker-3", true}}));

  // Submitted on the API node's root (its contracts are snapshotted there; every node on this machine
  // reads them).
  std::set<std::string> ids;
  for (size_t i = 0; i < kRuns; ++i) {
    std::string task = "t" + std::to_string(i);
    ids.insert(submit(api_root, store, own_contract(api_root, task, "true"), task));
  }
  ASSERT_EQ(ids.size(), kRuns);

  json q;
  ASSERT_TRUE(
      wait_until([&] { return all_ended(q = queue_via(api.port()), kRuns); }, std::chrono::minutes(12)))
      << "items still open: " << q.value("counts", json()).dump();

  // Every item ended once, successfully, on one attempt; the work was shared out.
  std::map<std::string, int> by_worker;
  for (const auto& it : q["items"]) {
    EXPECT_EQ(it["status"], "success") << it.dump(2);
    ASSERT_EQ(it["attempts"].size(), 1u) << it.dump(2);
    by_worker[it["attempts"][0].value("worker", "")]++;
  }
  auto fin = finishes(store);
  EXPECT_EQ(fin.size(), kRuns);
  for (const auto& [item, statuses] : fin)
    EXPECT_EQ(statuses, (std::map<std::string, int>{{"success", 1}})) << item;
  EXPECT_EQ(by_worker.count("api-node"), 0u) << "the API-only node ran nothing";
  EXPECT_GE(by_worker.size(), 2u) << "the work went to one worker only";
  for (const auto& [w, n] : by_worker) EXPECT_TRUE(w.rfind("worker-", 0) == 0) << w << " ran " << n;

  // Each node lists every item, and every run, sealed as its worker sealed it: the runs of the other
  // nodes come from the database.
  std::set<std::string> run_ids;
  for (const auto& it : q["items"]) run_ids.insert(it["attempts"][0].value("run_id", ""));
  ASSERT_EQ(run_ids.size(), kRuns);
  for (ServeProcess* node : {&api, &w1, &w2, &w3}) {
    json nq = queue_via(node->port());
    EXPECT_EQ(nq["items"].size(), kRuns);
    std::map<std::string, json> runs;
    EXPECT_TRUE(wait_until(
        [&] {
          runs = listed_runs(node->port());
          if (runs.size() != kRuns) return false;
          for (const auto& [id, row] : runs)
            if (row.value("verdict", "") != "success") return false;
          return true;
        },
        std::chrono::seconds(120)))
        << "node on port " << node->port() << " lists " << runs.size() << " runs";
    std::set<std::string> ids;
    for (const auto& [id, row] : runs) ids.insert(id);
    EXPECT_EQ(ids, run_ids);
  }
  // The database holds each run once, sealed, with the worker's events.
  db::PgConnection c(store);
  EXPECT_EQ(c.exec("SELECT count(*) FROM cp_runs WHERE sealed AND NOT fenced").integer(0, 0),
            static_cast<int64_t>(kRuns));
}

TEST(ScaleOut, TheApiNodeStreamsTheEventsOfARunExecutingOnAWorker) {
  const std::string store = migrated_database();
  RunProject api_root, w_root;
  ServeProcess api(api_root, node_args(store, "api-node", {"--no-scheduler"}));
  ServeProcess w(w_root, node_args(store, "worker-1", {"--concurrency", "1"}));
  ASSERT_NE(api.port(), 0) << api.output();
  ASSERT_NE(w.port(), 0) << w.output();
  json contract = queue_contract(api_root, "streamed", {"echo one", "sleep 2", "echo two", "sleep 2"});
  std::string item = submit(api_root, store, contract, "streamed");
  // The run appears on the API node while it still runs on the worker.
  std::string rid;
  ASSERT_TRUE(wait_until(
      [&] {
        json it = json::parse(http(api.port(), "GET", "/api/queue/" + item).body, nullptr, false);
        rid = it.is_object() ? it.value("run_id", "") : "";
        return !rid.empty() && http(api.port(), "GET", "/api/runs/" + rid).status == 200;
      },
      std::chrono::seconds(120)))
      << w.output();
  json live = json::parse(http(api.port(), "GET", "/api/runs/" + rid).body, nullptr, false);
  EXPECT_NE(live.value("status", ""), "sealed") << "the stream starts while the run is live";
  EXPECT_FALSE(fs::exists(bundle_of(api_root, rid) / "seal.json"));
  auto sse =
      read_sse(api.port(), "/api/runs/" + rid + "/events/stream", {}, 100000, std::chrono::seconds(120));
  EXPECT_EQ(sse.status, 200);
  ASSERT_TRUE(sse.ended) << "the stream ends when the run is sealed";
  ASSERT_FALSE(sse.events.empty());
  EXPECT_EQ(sse.events.front().event, "RUN_STARTED");
  EXPECT_EQ(sse.events.back().event, "RUN_SEALED");
  // Exactly the worker's own log: the same lines, so the same hash chain.
  std::vector<std::string> logged = lines_of(bundle_of(w_root, rid) / "events.jsonl");
  ASSERT_EQ(sse.events.size(), logged.size());
  for (size_t i = 0; i < logged.size(); ++i) {
    EXPECT_EQ(sse.events[i].data, logged[i]) << "event " << i + 1;
    EXPECT_EQ(sse.events[i].id, std::to_string(i + 1));
  }
  // The sealed bundle is served by the API node from the copy the database gave it, and verifies there.
  ASSERT_TRUE(wait_until([&] { return fs::exists(bundle_of(api_root, rid) / "seal.json"); },
                         std::chrono::seconds(60)));
  HttpResponse result = http(api.port(), "GET", "/api/runs/" + rid + "/reports/task_result");
  EXPECT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(fs::file_size(bundle_of(api_root, rid) / "artifacts/diff.patch"),
            fs::file_size(bundle_of(w_root, rid) / "artifacts/diff.patch"));
  Ran verify = run_env({CP_HOST_BIN, "--root", api_root.dir.path().string(), "runs", "verify", rid}, {});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  // A decision re-seals a bundle: on a copy it is refused, naming the node that ran the run, and the copy
  // is left as it was.
  const std::string seal_before = read_file(bundle_of(api_root, rid) / "seal.json");
  for (const char* verb : {"approve", "reject"}) {
    Ran d = run_env({CP_HOST_BIN, "--root", api_root.dir.path().string(), verb, rid, "--reason", "r"}, {});
    EXPECT_EQ(d.exit_code, 1) << verb << d.out << d.err;
    EXPECT_NE(d.err.find("ran on worker 'worker-1'"), std::string::npos) << d.err;
  }
  EXPECT_EQ(read_file(bundle_of(api_root, rid) / "seal.json"), seal_before);
}

TEST(ScaleOut, AKilledWorkersRunsAreRetriedElsewhereOnceItsLeaseLapses) {
  const std::string store = migrated_database();
  RunProject a_root, b_root;
  ServeProcess a(a_root, node_args(store, "doomed", {"--concurrency", "2", "--lease-ttl", "2"}));
  ASSERT_NE(a.port(), 0) << a.output();
  std::vector<std::string> items;
  for (int i = 0; i < 2; ++i) {
    std::string task = "slow" + std::to_string(i);
    items.push_back(submit(a_root, store, own_contract(a_root, task, "sleep 2"), task));
  }
  // Both are running on the doomed node before the second node starts.
  ASSERT_TRUE(wait_until(
      [&] {
        json q = queue_via(a.port());
        int running = 0;
        for (const auto& it : q["items"]) running += it["state"] == "running";
        return running == 2;
      },
      std::chrono::seconds(30)));
  a.kill9();
  auto killed_at = std::chrono::steady_clock::now();
  ServeProcess b(b_root, node_args(store, "survivor", {"--concurrency", "2", "--lease-ttl", "2"}));
  ASSERT_NE(b.port(), 0) << b.output();
  json q;
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_via(b.port()), 2); }, std::chrono::seconds(90)))
      << q.dump(2);
  auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  for (const auto& it : q["items"]) {
    EXPECT_EQ(it["status"], "success") << it.dump(2);
    ASSERT_EQ(it["attempts"].size(), 2u) << it.dump(2);
    EXPECT_EQ(it["attempts"][0]["worker"], "doomed");
    EXPECT_NE(it["attempts"][0]["reason"].get<std::string>().find("lost its lease"), std::string::npos);
    EXPECT_EQ(it["attempts"][1]["worker"], "survivor");
  }
  // Ended once: the lost attempt as an error, the item by its one success.
  for (const auto& [item, statuses] : finishes(store))
    EXPECT_EQ(statuses, (std::map<std::string, int>{{"error", 1}, {"success", 1}})) << item;
  RecordProperty("retried_after_ms", static_cast<int>(took.count()));
}

TEST(ScaleOut, APausedWorkerPastItsLeaseIsFencedOffWhenItWakes) {
  const std::string store = migrated_database();
  RunProject a_root, b_root;
  ServeProcess a(a_root, node_args(store, "sleeper", {"--concurrency", "1", "--lease-ttl", "2"}));
  ASSERT_NE(a.port(), 0) << a.output();
  std::string item = submit(a_root, store, own_contract(a_root, "paused", "sleep 3"), "paused");
  // Generous waits: under the sanitizers, with other tests beside it, a run takes seconds to start.
  ASSERT_TRUE(wait_until([&] { return queue_via(a.port())["items"][0]["state"] == "running"; },
                         std::chrono::seconds(120)))
      << a.output();
  ::kill(a.pid(), SIGSTOP);  // its child run goes on; serve itself beats no more
  ServeProcess b(b_root, node_args(store, "taker", {"--concurrency", "1", "--lease-ttl", "2"}));
  ASSERT_NE(b.port(), 0) << b.output();
  json q;
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_via(b.port()), 1); }, std::chrono::seconds(180)))
      << q.dump(2);
  ::kill(a.pid(), SIGCONT);
  // The sleeper wakes to find its attempt taken: whatever its run did is not recorded.
  ASSERT_TRUE(wait_until([&] { return a.output().find("was fenced") != std::string::npos; },
                         std::chrono::seconds(120)))
      << a.output();
  json after = queue_via(b.port());
  const json& it = after["items"][0];
  EXPECT_EQ(it["status"], "success");
  ASSERT_EQ(it["attempts"].size(), 2u) << it.dump(2);
  EXPECT_EQ(it["attempts"][0]["worker"], "sleeper");
  EXPECT_EQ(it["attempts"][0]["status"], "error")
      << "the paused attempt keeps the lost-lease end, not its run's";
  EXPECT_EQ(it["attempts"][1]["worker"], "taker");
  auto fin = finishes(store);
  EXPECT_EQ(fin[item], (std::map<std::string, int>{{"error", 1}, {"success", 1}}));

  // Its appends and its seal were refused by the fence: the sleeper's own bundle was sealed, yet the
  // database holds its run as it stood when the fence closed, unsealed, and no file of it.
  const std::string old_run = it["attempts"][0]["run_id"], new_run = it["attempts"][1]["run_id"];
  EXPECT_TRUE(wait_until([&] { return a.output().find("refused its events and seal") != std::string::npos; },
                         std::chrono::seconds(60)))
      << a.output();
  std::vector<std::string> local = lines_of(bundle_of(a_root, old_run) / "events.jsonl");
  ASSERT_FALSE(local.empty());
  EXPECT_NE(local.back().find("RUN_SEALED"), std::string::npos) << "the paused run did seal, locally";
  db::PgConnection c(store);
  db::PgRows old_row =
      c.exec("SELECT sealed, fenced, events_count FROM cp_runs WHERE run_id = $1", {old_run});
  if (old_row.size() == 1) {  // it may have been paused before its first push
    EXPECT_EQ(old_row.text(0, 0), "f");
    EXPECT_EQ(old_row.text(0, 1), "t");
    EXPECT_LT(old_row.integer(0, 2), static_cast<int64_t>(local.size()));
  }
  EXPECT_EQ(
      c.exec("SELECT count(*) FROM cp_run_events WHERE run_id = $1 AND line LIKE '%RUN_SEALED%'", {old_run})
          .integer(0, 0),
      0);
  EXPECT_EQ(c.exec("SELECT count(*) FROM cp_run_files WHERE run_id = $1", {old_run}).integer(0, 0), 0);
  // The bundle the database holds for the item is the new attempt's, and it is what the woken node serves.
  db::PgRows new_row = c.exec("SELECT sealed, worker_id FROM cp_runs WHERE item_id = $1 AND sealed", {item});
  ASSERT_EQ(new_row.size(), 1);
  EXPECT_EQ(new_row.text(0, 1), "taker");
  EXPECT_EQ(c.exec("SELECT run_id FROM cp_runs WHERE item_id = $1 AND sealed", {item}).text(0, 0), new_run);
  ASSERT_TRUE(wait_until([&] { return fs::exists(bundle_of(a_root, new_run) / "seal.json"); },
                         std::chrono::seconds(60)));
  EXPECT_EQ(lines_of(bundle_of(a_root, new_run) / "events.jsonl"),
            lines_of(bundle_of(b_root, new_run) / "events.jsonl"));
  // Elsewhere the cut-off run is listed as fenced, not as running for ever, and its stream ends.
  if (old_row.size() == 1) {
    json listed;
    EXPECT_TRUE(wait_until(
        [&] {
          listed = listed_runs(b.port())[old_run];
          return listed.value("status", "") == "fenced";
        },
        std::chrono::seconds(60)))
        << listed.dump();
    auto sse =
        read_sse(b.port(), "/api/runs/" + old_run + "/events/stream", {}, 100000, std::chrono::seconds(30));
    EXPECT_TRUE(sse.ended);
    EXPECT_EQ(static_cast<int64_t>(sse.events.size()), old_row.integer(0, 2));
  }
}

TEST(ScaleOut, TheStoresCredentialsNeverReachARunsProcesses) {
  // The store's password (ignored by the test server, which trusts its socket) is a canary, and so is
  // libpq's PGPASSWORD set on serve.
  const std::string store = migrated_database() + " password=canary-url-secret";
  RunProject w;
  // The run's command fails if anything of the store reaches it: its own environment, or what it can read
  // of any process on the machine, serve's and `cp-host run`'s environment and command line included.
  write_file(
      w.repo / "scripts/no_store.sh",
      "[ \"$CANARY_VISIBLE\" = yes ] || { echo 'the environment did not reach the run'; exit 1; }\n"
      "if env | grep -q -e CP_HOST_STORE -e PGPASSWORD -e canary-db-secret; then\n"
      "  echo 'the store reached the run'; exit 1; fi\n"
      "seen=0\n"
      "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do\n"
      "  if tr '\\0' '\\n' < \"$f\" 2>/dev/null | grep -q -e canary-db-secret -e canary-url-secret; then\n"
      "    echo \"the store is readable in $f\"; exit 1; fi\n"
      "  seen=$((seen + 1))\n"
      "done\n"
      "[ \"$seen\" -gt 10 ] || { echo 'could not look at /proc'; exit 1; }\n");
  Ran c = sh("git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m script", w.repo);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  ServeProcess node(w, node_args(store, "env-check", {"--concurrency", "1"}),
                    {"PGPASSWORD=canary-db-secret", "CANARY_VISIBLE=yes"});
  ASSERT_NE(node.port(), 0) << node.output();
  json contract = own_contract(w, "envcheck", "sh scripts/no_store.sh");
  contract["acceptance_tests"] = json::array({{{"name", "no-store"}, {"cmd", "sh scripts/no_store.sh"}}});
  submit(w, store, contract, "envcheck");
  json q;
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_via(node.port()), 1); }, std::chrono::seconds(60)));
  EXPECT_EQ(q["items"][0]["status"], "success") << q.dump(2);
  // The control: serve itself holds the canaries (in its environment; its command line is masked).
  std::string environ_text = read_file("/proc/" + std::to_string(node.pid()) + "/environ");
  EXPECT_NE(environ_text.find("canary-db-secret"), std::string::npos);
  std::string cmdline = read_file("/proc/" + std::to_string(node.pid()) + "/cmdline");
  EXPECT_EQ(cmdline.find("canary-url-secret"), std::string::npos)
      << "serve's command line shows the password";
  EXPECT_NE(cmdline.find("--store"), std::string::npos);
}

TEST(ScaleOut, ALiveNodesIdIsRefusedAndEachNodeIsJudgedByItsOwnLease) {
  const std::string store = migrated_database();
  RunProject a_root, b_root, c_root;
  // A node beating every 6 s (its TTL is the default 30 s) runs a long item.
  ServeProcess a(a_root, node_args(store, "steady", {"--concurrency", "1"}));
  ASSERT_NE(a.port(), 0) << a.output();
  std::string item = submit(a_root, store, own_contract(a_root, "long", "sleep 8"), "long");
  ASSERT_TRUE(wait_until([&] { return queue_via(a.port())["items"][0]["state"] == "running"; },
                         std::chrono::seconds(30)));
  // A second process with the same id is refused before it touches anything.
  ServeProcess twin(b_root, node_args(store, "steady", {"--concurrency", "1"}));
  EXPECT_EQ(twin.port(), 0);
  EXPECT_EQ(twin.stop(), 10);
  EXPECT_NE(twin.output().find("is held by a live node"), std::string::npos) << twin.output();
  // A node with a 1 s TTL of its own does not judge the steady node by it.
  ServeProcess hasty(c_root, node_args(store, "hasty", {"--concurrency", "1", "--lease-ttl", "1"}));
  ASSERT_NE(hasty.port(), 0) << hasty.output();
  json q;
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_via(a.port()), 1); }, std::chrono::seconds(60)));
  ASSERT_EQ(q["items"][0]["attempts"].size(), 1u) << q.dump(2);
  EXPECT_EQ(q["items"][0]["attempts"][0]["worker"], "steady");
  EXPECT_EQ(q["items"][0]["status"], "success");
}

TEST(ScaleOut, OverlappingPathsNeverRunAtOnceAcrossTwoWorkers) {
  const std::string store = migrated_database();
  RunProject a_root, b_root;
  ServeProcess a(a_root, node_args(store, "left", {"--concurrency", "2"}));
  ServeProcess b(b_root, node_args(store, "right", {"--concurrency", "2"}));
  ASSERT_NE(a.port(), 0) << a.output();
  ASSERT_NE(b.port(), 0) << b.output();
  // Four items that all lock work/shared/: however the two nodes claim them, one runs at a time.
  for (int i = 0; i < 4; ++i) {
    json c = own_contract(a_root, "shared" + std::to_string(i), "sleep 1");
    c["allowed_paths"] = json::array({"work/shared/"});
    submit(a_root, store, c, "shared" + std::to_string(i));
  }
  json q;
  ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_via(a.port()), 4); }, std::chrono::seconds(120)));
  std::vector<std::pair<std::string, std::string>> spans;
  for (const auto& it : q["items"]) {
    EXPECT_EQ(it["status"], "success") << it.dump(2);
    const json& at = it["attempts"].back();
    spans.emplace_back(at["claimed_at"], at["finished_at"]);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    EXPECT_LE(spans[i - 1].second, spans[i].first) << "two runs held work/shared/ at once";
}

TEST(ScaleOut, APostgresRestartUnderLoadLosesNothingAndDoublesNothing) {
  // A server of this test's own, restarted while two workers run a burst.
  auto server = PgServer::own(fs::temp_directory_path() / ("cp-test-pg-sc-" + std::to_string(::getpid())));
  const std::string store = server->fresh_database();
  ASSERT_EQ(host({"db", "migrate", "--store", store}).exit_code, 0);
  RunProject a_root, b_root;
  ServeProcess a(a_root, node_args(store, "first", {"--concurrency", "2"}));
  ServeProcess b(b_root, node_args(store, "second", {"--concurrency", "2"}));
  ASSERT_NE(a.port(), 0) << a.output();
  ASSERT_NE(b.port(), 0) << b.output();
  constexpr size_t kRuns = 40;
  for (size_t i = 0; i < kRuns; ++i) {
    std::string task = "r" + std::to_string(i);
    // Each run takes a second so that the burst outlasts the restart even on a fast machine.
    submit(a_root, store, own_contract(a_root, task, "sleep 1"), task);
  }
  // Once a few have ended, the server goes down and comes back while the rest are claimed and run.
  ASSERT_TRUE(wait_until(
      [&] {
        json q = queue_via(a.port());
        size_t ended = 0;
        for (const auto& it : q.value("items", json::array())) ended += it["state"] == "done";
        return ended >= 5;
      },
      std::chrono::seconds(120)));
  server->restart();
  json mid = queue_via(a.port());
  size_t open_items = 0;
  for (const auto& it : mid.value("items", json::array())) open_items += it["state"] != "done";
  EXPECT_GT(open_items, 0u) << "the restart came after the burst: it proves nothing";
  json q;
  ASSERT_TRUE(wait_until(
      [&] {
        HttpResponse r = http(b.port(), "GET", "/api/queue");
        if (r.status != 200) return false;
        q = json::parse(r.body, nullptr, false);
        return all_ended(q, kRuns);
      },
      std::chrono::minutes(5)))
      << q.dump(2) << a.output() << b.output();
  for (const auto& it : q["items"]) {
    EXPECT_EQ(it["status"], "success") << it.dump(2);
    EXPECT_EQ(it["attempts"].size(), 1u) << "an attempt was lost or doubled: " << it.dump(2);
  }
  for (const auto& [item, statuses] : finishes(store))
    EXPECT_EQ(statuses, (std::map<std::string, int>{{"success", 1}})) << item;
  EXPECT_EQ(finishes(store).size(), kRuns);
  // Every run reached the database whole, once: its events are the lines its worker logged, in order, and
  // it is sealed; and each node lists all of them, sealed.
  db::PgConnection c(store);
  for (const auto& it : q["items"]) {
    const std::string rid = it["attempts"][0]["run_id"];
    const bool on_a = !fs::exists(a_root.dir / ".runtime-cache/cortexpilot/runs/.replicas" / rid);
    std::vector<std::string> local = lines_of(bundle_of(on_a ? a_root : b_root, rid) / "events.jsonl");
    std::vector<std::string> stored;
    ASSERT_TRUE(wait_until(
        [&] {
          stored.clear();
          db::PgRows r = c.exec("SELECT line FROM cp_run_events WHERE run_id = $1 ORDER BY seq", {rid});
          for (int i = 0; i < r.size(); ++i) stored.push_back(r.text(i, 0));
          return stored.size() == local.size() &&
                 c.exec("SELECT sealed FROM cp_runs WHERE run_id = $1", {rid}).text(0, 0) == "t";
        },
        std::chrono::seconds(60)))
        << rid << ": " << stored.size() << " of " << local.size() << " events stored";
    EXPECT_EQ(stored, local) << rid;
  }
  for (ServeProcess* node : {&a, &b}) {
    std::map<std::string, json> runs;
    EXPECT_TRUE(wait_until(
        [&] {
          runs = listed_runs(node->port());
          size_t sealed = 0;
          for (const auto& [id, row] : runs) sealed += row.value("verdict", "") == "success";
          return runs.size() == kRuns && sealed == kRuns;
        },
        std::chrono::seconds(60)))
        << runs.size();
  }
  // Both nodes are still serving, and still beat.
  HttpResponse w = http(a.port(), "GET", "/api/workers");
  ASSERT_EQ(w.status, 200);
  const json nodes = json::parse(w.body);
  for (const auto& node : nodes["workers"]) EXPECT_TRUE(node["alive"]) << node.dump();
}

TEST(ScaleOut, ARestartedWorkerPushesTheSealsAnEarlierProcessLeftUnpushed) {
  const std::string store = migrated_database();
  RunProject root;
  std::string item, rid;
  {
    ServeProcess w(root, node_args(store, "worker-r", {"--concurrency", "1"}));
    ASSERT_NE(w.port(), 0) << w.output();
    item = submit(root, store, own_contract(root, "resumed", "true"), "resumed");
    json q;
    ASSERT_TRUE(wait_until([&] { return all_ended(q = queue_via(w.port()), 1); }, std::chrono::seconds(120)));
    rid = q["items"][0]["attempts"][0]["run_id"];
  }
  // As if the process had stopped before its run's seal reached the database (it was away at the time).
  db::PgConnection c(store);
  c.exec("UPDATE cp_runs SET sealed = false WHERE run_id = $1", {rid});
  c.exec("DELETE FROM cp_run_files WHERE run_id = $1", {rid});
  ServeProcess again(root, node_args(store, "worker-r", {"--concurrency", "1"}));
  ASSERT_NE(again.port(), 0) << again.output();
  EXPECT_TRUE(wait_until(
      [&] { return c.exec("SELECT sealed FROM cp_runs WHERE run_id = $1", {rid}).text(0, 0) == "t"; },
      std::chrono::seconds(60)))
      << again.output();
  EXPECT_GT(c.exec("SELECT count(*) FROM cp_run_files WHERE run_id = $1 AND path = 'seal.json'", {rid})
                .integer(0, 0),
            0);
  // `db status` counts the run index.
  Ran st = host({"db", "status", "--store", store, "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  json runs = json::parse(st.out)["runs"];
  EXPECT_EQ(runs["runs"], 1);
  EXPECT_EQ(runs["sealed"], 1);
  EXPECT_EQ(runs["open"], 0);
  EXPECT_GT(runs["events"].get<int64_t>(), 5);
  EXPECT_GT(runs["bundle_bytes"].get<int64_t>(), 1000);
  EXPECT_EQ(runs["staged_bytes"], 0);
}

TEST(ScaleOut, ALargeLogReachesTheStoreWholeAcrossAWorkersRestart) {
  // Over 2000 events and over 4 MiB of them: more than one push, and more than one read window. The worker
  // is killed part way (its run is then sealed as interrupted by the restarted worker) and started again with
  // the same id: it goes on from what the store holds, neither doubling nor dropping a line.
  const std::string store = migrated_database();
  RunProject root;
  json contract = own_contract(root, "large", "true");
  std::vector<std::string> commands(2300, "echo " + std::string(3000, 'x'));  // an event each
  contract["runtime_options"]["commands"] = commands;
  contract["budgets"]["wall_time_sec"] = 900;
  contract["timeout_retry"]["timeout_sec"] = 900;
  std::string item = submit(root, store, contract, "large");
  db::PgConnection c(store);
  std::string rid;
  {
    ServeProcess w(root, node_args(store, "worker-l", {"--concurrency", "1", "--lease-ttl", "30"}));
    ASSERT_NE(w.port(), 0) << w.output();
    ASSERT_TRUE(wait_until(
        [&] {
          db::PgRows r = c.exec("SELECT run_id, events_count FROM cp_runs");
          if (r.size() != 1) return false;
          rid = r.text(0, 0);
          return r.integer(0, 1) > 2050;  // past one push's 2000 lines
        },
        std::chrono::seconds(300)))
        << w.output();
    w.kill9();
  }
  ServeProcess again(root, node_args(store, "worker-l", {"--concurrency", "1", "--lease-ttl", "30"}));
  ASSERT_NE(again.port(), 0) << again.output();
  ASSERT_TRUE(wait_until(
      [&] { return c.exec("SELECT sealed FROM cp_runs WHERE run_id = $1", {rid}).text(0, 0) == "t"; },
      std::chrono::seconds(300)))
      << again.output();
  std::vector<std::string> local = lines_of(bundle_of(root, rid) / "events.jsonl");
  std::vector<std::string> stored;
  db::PgRows r = c.exec("SELECT line FROM cp_run_events WHERE run_id = $1 ORDER BY seq", {rid});
  for (int i = 0; i < r.size(); ++i) stored.push_back(r.text(i, 0));
  EXPECT_GT(stored.size(), 2000u);
  ASSERT_EQ(stored.size(), local.size());
  EXPECT_TRUE(stored == local) << "the stored events differ from the worker's log";
  EXPECT_NE(stored.back().find("RUN_SEALED"), std::string::npos);
  EXPECT_EQ(c.exec("SELECT events_count FROM cp_runs WHERE run_id = $1", {rid}).integer(0, 0),
            static_cast<int64_t>(local.size()));
}

TEST(ScaleOut, ChainsAreRefusedOnASharedStoreRatherThanFailingOnAnotherNode) {
  const std::string store = migrated_database();
  RunProject p;
  json chain = {{"schema_version", 1},
                {"chain_id", "one-step"},
                {"lifecycle", {{"require_pm_loop", false}}},
                {"steps", json::array({{{"step_id", "one"},
                                        {"kind", "task"},
                                        {"role", "WORKER"},
                                        {"contract", own_contract(p, "one", "true")}}})}};
  write_file(p.dir / "chain.json", chain.dump(2));
  Ran r = run_env({CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", p.dir.path().string(), "chain",
                   "submit", (p.dir / "chain.json").string(), "--repo", p.repo.string()},
                  {"CP_HOST_STORE=" + store});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE((r.out + r.err).find("chains cannot be queued on a shared (PostgreSQL) store yet"),
            std::string::npos)
      << r.out << r.err;
  db::PgConnection c(store);
  EXPECT_EQ(c.exec("SELECT count(*) FROM cp_queue_ops").integer(0, 0), 0) << "nothing was queued";
}

}  // namespace
}  // namespace cp::test
