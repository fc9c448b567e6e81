// Path locks through a real `cp-host serve`: queued runs whose allowed_paths overlap never run at the same
// time (proved from their bundles' event times) while others run together; the waiting item says which
// lock holds it and who holds it; an admin may force a release (recorded as a host event and in the
// governance lane), an operator may not; locks of a run killed with -9, or of a serve killed with -9, are
// released; a leaked lock frees itself when its TTL passes; `cp-host locks` reads and releases them on the
// root, with or without serve.
#include "core/clock.hpp"
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace cp::test {
namespace {

fs::path runtime(const RunProject& p) {
  return p.dir / ".runtime-cache/cortexpilot";
}

// A queue contract whose run may change `paths` (and so locks them).
json locking(const RunProject& p, const std::string& task, std::vector<std::string> paths,
             std::vector<std::string> commands) {
  json c = queue_contract(p, task, std::move(commands));
  c["allowed_paths"] = paths;
  return c;
}

Ran locks_cli(const RunProject& p, std::vector<std::string> args) {
  std::vector<std::string> a{"--root", p.dir.path().string(), "locks"};
  a.insert(a.end(), args.begin(), args.end());
  return host(a);
}

json queue_item(const RunProject& p, const std::string& item) {
  Ran r = host({"--root", p.dir.path().string(), "queue", "show", item});
  return json::parse(r.out, nullptr, false);
}

bool ended(const json& it) {
  return it.is_object() && (it.value("state", "") == "done" || it.value("state", "") == "cancelled");
}

// The pid of the live `cp-host run` serve started for queue item `item`; -1 when there is none.
pid_t run_child_of(const std::string& item) {
  pid_t found = -1;
  for_each_live_process([&](const fs::path& proc) {
    std::string cmd = proc_file(proc, "cmdline");
    if (cmd.find(item) != std::string::npos && cmd.find("--queue-item") != std::string::npos)
      found = static_cast<pid_t>(std::stol(proc.filename().string()));
  });
  return found;
}

// Waits until `waiting` is held back by a lock of `holder`'s running run; returns that run id.
std::string wait_held_back(const RunProject& p, const std::string& holder, const std::string& waiting,
                           const std::string& path = "src/") {
  std::string run_id;
  json w;
  bool ok = wait_until(
      [&] {
        json h = queue_item(p, holder);
        run_id = h.value("run_id", "");
        w = queue_item(p, waiting);
        return h.value("state", "") == "running" && !run_id.empty() &&
               w.value("waiting_on", "") == "lock " + path + " held by " + run_id;
      },
      std::chrono::seconds(60));
  EXPECT_TRUE(ok) << "holder " << queue_item(p, holder).dump(2) << "\nwaiting " << w.dump(2);
  return run_id;
}

// The milliseconds of the first event of `type` in run `run_id`'s events.jsonl; -1 when absent.
int64_t event_ms(const RunProject& p, const std::string& run_id, const std::string& type) {
  std::ifstream in(runtime(p) / "runs" / run_id / "events.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    json e = json::parse(line, nullptr, false);
    if (e.is_object() && e.value("type", "") == type) return core::parse_iso_ms(e.value("ts", ""));
  }
  return -1;
}

std::vector<json> jsonl(const fs::path& file) {
  std::vector<json> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line, nullptr, false));
  return out;
}

std::vector<json> queue_ops(const RunProject& p, const std::string& op, const std::string& item) {
  std::vector<json> out;
  for (const auto& o : jsonl(runtime(p) / "queue.jsonl"))
    if (o.value("op", "") == op && o.value("item_id", "") == item) out.push_back(o);
  return out;
}

std::vector<json> host_events(const RunProject& p) {
  return jsonl(runtime(p) / "host-events.jsonl");
}

TEST(ServeLocks, OverlappingRunsNeverOverlapInTimeWhileOthersRunTogether) {
  RunProject p;
  // Queued before serve starts, so its first look sees all three: a takes src/, b (src/greeting.sh, inside
  // src/) must wait although it comes next in run order, and c (docs/) goes ahead of it. c ends long before
  // a: from then on a slot is free, and only a's lock keeps b waiting.
  std::string a = submit_cli(p, locking(p, "lock-a", {"src/"}, {"sleep 6"}), "a", {"--priority", "9"});
  std::string b =
      submit_cli(p, locking(p, "lock-b", {"./src//greeting.sh"}, {"true"}), "b", {"--priority", "8"});
  std::string c = submit_cli(p, locking(p, "lock-c", {"docs/"}, {"sleep 2"}), "c", {"--priority", "7"});
  EXPECT_EQ(queue_item(p, b)["lock_paths"], json::array({"src/greeting.sh"})) << "normalised when queued";
  std::string viewer = add_token(p, "eye", "viewer");
  // A TTL shorter than a's run: serve must renew a's locks while it runs, or b would start too early.
  ServeProcess serve(p,
                     {"--concurrency", "2", "--lock-ttl", "2", "--tokens", (p.dir / "tokens.json").string()});
  ASSERT_NE(serve.port(), 0) << serve.output();

  std::string ra = wait_held_back(p, a, b);
  ASSERT_FALSE(ra.empty());
  // The API and the CLI say the same.
  json q = json::parse(http(serve.port(), "GET", "/api/queue", bearer(viewer)).body);
  bool said = false;
  for (const auto& it : q["items"])
    if (it["item_id"] == b) said = it.value("waiting_on", "") == "lock src/ held by " + ra;
  EXPECT_TRUE(said) << q.dump(2);
  Ran list = host({"--root", p.dir.path().string(), "queue", "list"});
  EXPECT_NE(list.out.find("(lock src/ held by " + ra + ")"), std::string::npos) << list.out;
  auto locks = http(serve.port(), "GET", "/api/locks", bearer(viewer));
  ASSERT_EQ(locks.status, 200) << locks.body;
  json held = json::parse(locks.body);
  std::set<std::string> paths;
  for (const auto& l : held["locks"]) {
    paths.insert(l["path"].get<std::string>() + "@" + l["item_id"].get<std::string>());
    EXPECT_EQ(l["repo"], fs::canonical(p.repo).string());
    EXPECT_FALSE(l["since"].get<std::string>().empty());
    EXPECT_GT(core::parse_iso_ms(l["expires_at"]), core::parse_iso_ms(l["since"]));
    if (l["item_id"] == a) {
      EXPECT_EQ(l["run_id"], ra);
    }
  }
  EXPECT_EQ(paths, (std::set<std::string>{"src/@" + a, "docs/@" + c})) << held.dump(2);
  EXPECT_EQ(held["count"], 2);

  json ia, ib, ic;
  ASSERT_TRUE(wait_until(
      [&] {
        return ended(ia = queue_item(p, a)) && ended(ib = queue_item(p, b)) && ended(ic = queue_item(p, c));
      },
      std::chrono::seconds(120)))
      << ia.dump(2) << ib.dump(2) << ic.dump(2);
  const std::string rb = ib.value("run_id", ""), rc = ic.value("run_id", "");
  // From the bundles: [RUNNER_STARTED, RUN_SEALED] of each run.
  const int64_t a0 = event_ms(p, ra, "RUNNER_STARTED"), a1 = event_ms(p, ra, "RUN_SEALED");
  const int64_t b0 = event_ms(p, rb, "RUNNER_STARTED"), b1 = event_ms(p, rb, "RUN_SEALED");
  const int64_t c0 = event_ms(p, rc, "RUNNER_STARTED"), c1 = event_ms(p, rc, "RUN_SEALED");
  for (int64_t t : {a0, a1, b0, b1, c0, c1}) ASSERT_GT(t, 0) << ra << " " << rb << " " << rc;
  EXPECT_GE(b0, a1) << "b started before a was sealed: overlapping paths ran at once";
  EXPECT_TRUE(a0 < c1 && c0 < a1) << "a and c (src/ and docs/) did not run together";
  EXPECT_LT(c1, a1) << "c was to end first, leaving b a free slot";
  // a outlived its TTL, so its locks were renewed; its seal released them (before its process ended).
  EXPECT_GT(a1 - a0, 2000);
  EXPECT_FALSE(queue_ops(p, "locks_renewed", a).empty());
  auto released = queue_ops(p, "locks_released", a);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].value("by", ""), "cp-host");
  EXPECT_NE(released[0].value("reason", "").find("sealed"), std::string::npos) << released[0].dump();
  // Nothing is held once everything ended, and no host event was needed for any of it.
  EXPECT_EQ(json::parse(http(serve.port(), "GET", "/api/locks", bearer(viewer)).body)["count"], 0);
  EXPECT_TRUE(host_events(p).empty());
  for (const auto& line : jsonl(runtime(p) / "queue.jsonl")) expect_valid("queue_item", line, line.dump());
}

TEST(ServeLocks, ForceReleaseIsForAdminsWithAReasonAndIsRecorded) {
  RunProject p;
  std::string a = submit_cli(p, locking(p, "hold-a", {"src/"}, {"sleep 60"}), "a", {"--priority", "9"});
  std::string b = submit_cli(p, locking(p, "wait-b", {"src/greeting.sh"}, {"true"}), "b");
  std::string admin = add_token(p, "boss", "admin");
  std::string op = add_token(p, "ops", "operator");
  std::string viewer = add_token(p, "eye", "viewer");
  ServeProcess serve(p, {"--concurrency", "2", "--tokens", (p.dir / "tokens.json").string()});
  ASSERT_NE(serve.port(), 0) << serve.output();
  std::string ra = wait_held_back(p, a, b);
  ASSERT_FALSE(ra.empty());
  json listed = json::parse(http(serve.port(), "GET", "/api/locks", bearer(viewer)).body);
  ASSERT_EQ(listed["count"], 1) << listed.dump(2);
  const std::string id = listed["locks"][0]["lock_id"];
  EXPECT_EQ(listed["locks"][0]["run_id"], ra);
  EXPECT_EQ(listed["locks"][0]["path"], "src/");

  auto release = [&](const std::string& token, const std::string& body) {
    std::map<std::string, std::string> h;
    if (!token.empty()) h = bearer(token);
    return http(serve.port(), "POST", "/api/locks/release", h, body);
  };
  auto pointer = [](const HttpResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    return j.is_object() ? j["error"].value("details", json::object()).value("pointer", "") : "";
  };
  const std::string good = json{{"lock", id}, {"reason", "a is stuck; b must go"}}.dump();
  EXPECT_EQ(release("", good).status, 401);
  EXPECT_EQ(release(viewer, good).status, 403);
  auto by_op = release(op, good);
  EXPECT_EQ(by_op.status, 403) << by_op.body;
  auto no_reason = release(admin, json{{"lock", id}}.dump());
  EXPECT_EQ(no_reason.status, 422) << no_reason.body;
  EXPECT_EQ(pointer(no_reason), "/reason");
  EXPECT_EQ(release(admin, json{{"lock", id}, {"reason", "  "}}.dump()).status, 422);
  auto neither = release(admin, json{{"reason", "r"}}.dump());
  EXPECT_EQ(neither.status, 400) << neither.body;
  EXPECT_EQ(release(admin, json{{"lock", id}, {"run_id", ra}, {"reason", "r"}}.dump()).status, 400);
  auto bad_id = release(admin, json{{"lock", "src/"}, {"reason", "r"}}.dump());
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_EQ(pointer(bad_id), "/lock");
  auto up = release(admin, json{{"run_id", ra}, {"path", "src/../.."}, {"reason", "r"}}.dump());
  EXPECT_EQ(up.status, 400) << up.body;
  EXPECT_EQ(pointer(up), "/path");
  EXPECT_EQ(release(admin, json{{"run_id", "no such run!"}, {"reason", "r"}}.dump()).status, 400);
  auto unknown = release(admin, json{{"lock", id}, {"reason", "r"}, {"force", true}}.dump());
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(pointer(unknown), "/force");
  EXPECT_EQ(release(admin, "[1]").status, 400);
  EXPECT_EQ(release(admin, json{{"lock", "lk-0000000000000000"}, {"reason", "r"}}.dump()).status, 404);
  EXPECT_EQ(release(admin, json{{"run_id", ra}, {"path", "docs/"}, {"reason", "r"}}.dump()).status, 404);
  // None of that released anything or recorded anything.
  EXPECT_EQ(json::parse(http(serve.port(), "GET", "/api/locks", bearer(viewer)).body)["count"], 1);
  EXPECT_EQ(queue_item(p, b)["state"], "queued");
  EXPECT_TRUE(queue_ops(p, "locks_released", a).empty());
  EXPECT_TRUE(host_events(p).empty());

  auto ok = release(admin, good);
  ASSERT_EQ(ok.status, 200) << ok.body;
  json done = json::parse(ok.body);
  ASSERT_EQ(done["count"], 1);
  EXPECT_EQ(done["released"][0]["lock_id"], id);
  EXPECT_EQ(done["released"][0]["run_id"], ra);
  EXPECT_EQ(done["event"]["type"], "PATH_LOCK_RELEASED");
  EXPECT_EQ(release(admin, good).status, 404) << "released once";
  // b runs now, while a (which lost its lock, not its run) still runs.
  json ib;
  ASSERT_TRUE(wait_until([&] { return ended(ib = queue_item(p, b)); }, std::chrono::seconds(60)))
      << ib.dump(2);
  EXPECT_EQ(queue_item(p, a)["state"], "running");

  // The host event: who, how, why, which lock.
  auto events = host_events(p);
  ASSERT_EQ(events.size(), 1u);
  const json& ev = events[0];
  expect_valid("event", ev, "host event");
  EXPECT_EQ(ev["type"], "PATH_LOCK_RELEASED");
  EXPECT_EQ(ev["run_id"], "host");
  EXPECT_EQ(ev["payload"]["how"], "forced");
  EXPECT_EQ(ev["payload"]["by"], "boss");
  EXPECT_EQ(ev["payload"]["by_kind"], "token");
  EXPECT_EQ(ev["payload"]["reason"], "a is stuck; b must go");
  EXPECT_EQ(ev["payload"]["locks"][0]["lock_id"], id);
  EXPECT_EQ(ev["payload"]["locks"][0]["run_id"], ra);
  // And the governance lane.
  fs::path gov = p.dir / ".runtime-cache/logs/governance/governance.jsonl";
  EXPECT_TRUE(wait_until(
      [&] {
        std::string text = fs::exists(gov) ? read_file(gov) : "";
        return text.find("released (forced) by boss: a is stuck; b must go") != std::string::npos &&
               text.find(ra) != std::string::npos;
      },
      std::chrono::seconds(10)))
      << (fs::exists(gov) ? read_file(gov) : "no governance log");
  EXPECT_EQ(http(serve.port(), "POST", "/api/runs/" + a + "/cancel", bearer(op), "{}").status, 202);
  EXPECT_TRUE(wait_until([&] { return ended(queue_item(p, a)); }, std::chrono::seconds(60)));
}

TEST(ServeLocks, KillNineOfARunReleasesItsLocks) {
  RunProject p;
  std::string a = submit_cli(p, locking(p, "doomed-a", {"src/"}, {"sleep 60"}), "a", {"--priority", "9"});
  std::string b = submit_cli(p, locking(p, "next-b", {"src/greeting.sh"}, {"true"}), "b");
  ServeProcess serve(p, {"--concurrency", "2"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  std::string ra = wait_held_back(p, a, b);
  ASSERT_FALSE(ra.empty());
  pid_t child = run_child_of(a);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  json ia, ib;
  ASSERT_TRUE(wait_until([&] { return ended(ia = queue_item(p, a)) && ended(ib = queue_item(p, b)); },
                         std::chrono::seconds(60)))
      << ia.dump(2) << ib.dump(2);
  EXPECT_EQ(ia["status"], "error") << ia.dump(2);
  EXPECT_GE(event_ms(p, ib.value("run_id", ""), "RUNNER_STARTED"), event_ms(p, ra, "RUN_SEALED"))
      << "b started before the killed a was sealed";
  EXPECT_EQ(json::parse(locks_cli(p, {"list", "--json"}).out)["count"], 0);
}

TEST(ServeLocks, LocksOfAServeKilledWithItsRunAreReleasedOnRestart) {
  RunProject p;
  std::string a = submit_cli(p, locking(p, "orphan-a", {"src/"}, {"sleep 60"}), "a", {"--priority", "9"});
  std::string b = submit_cli(p, locking(p, "after-b", {"src/greeting.sh"}, {"true"}), "b");
  auto serve = std::make_unique<ServeProcess>(p, std::vector<std::string>{"--concurrency", "2"});
  ASSERT_NE(serve->port(), 0) << serve->output();
  std::string ra = wait_held_back(p, a, b);
  ASSERT_FALSE(ra.empty());
  pid_t child = run_child_of(a);
  ASSERT_GT(child, 0);
  serve->kill9();  // its run dies with it (PDEATHSIG)
  ASSERT_TRUE(wait_until([&] { return !process_alive(child); }, std::chrono::seconds(10)));

  // With no serve, the lock is still in the queue, and the CLI reads it on the root.
  Ran list = locks_cli(p, {"list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json held = json::parse(list.out);
  ASSERT_EQ(held["count"], 1) << held.dump(2);
  EXPECT_EQ(held["locks"][0]["run_id"], ra);
  Ran text = locks_cli(p, {"list"});
  EXPECT_NE(text.out.find(ra), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("src/"), std::string::npos) << text.out;
  // Bad input is refused with exit 2, a lock nobody holds with exit 1; neither releases anything.
  Ran no_reason = locks_cli(p, {"release", "--run", ra});
  EXPECT_EQ(no_reason.exit_code, 2) << no_reason.err;
  EXPECT_NE(no_reason.err.find("--reason"), std::string::npos) << no_reason.err;
  Ran both = locks_cli(p, {"release", "--run", ra, "--lock", held["locks"][0]["lock_id"], "--reason", "r"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  Ran nobody = locks_cli(p, {"release", "--run", "run-of-nobody", "--reason", "r"});
  EXPECT_EQ(nobody.exit_code, 1) << nobody.err;
  EXPECT_EQ(json::parse(locks_cli(p, {"list", "--json"}).out)["count"], 1);

  // The restart's recovery ends the dead attempt, and its locks with it: b runs.
  serve = std::make_unique<ServeProcess>(p, std::vector<std::string>{"--concurrency", "2"});
  ASSERT_NE(serve->port(), 0) << serve->output();
  json ia, ib;
  ASSERT_TRUE(wait_until([&] { return ended(ia = queue_item(p, a)) && ended(ib = queue_item(p, b)); },
                         std::chrono::seconds(60)))
      << ia.dump(2) << ib.dump(2);
  EXPECT_NE(ia["attempts"][0].value("reason", "").find("host_interrupted"), std::string::npos) << ia.dump(2);
  EXPECT_EQ(json::parse(locks_cli(p, {"list", "--json"}).out)["count"], 0);
  EXPECT_TRUE(host_events(p).empty()) << "recovery is no forced release";
}

TEST(ServeLocks, TheCommandLineReleasesALockWhileServeRuns) {
  RunProject p;
  std::string a =
      submit_cli(p, locking(p, "long-a", {"src/", "docs/"}, {"sleep 60"}), "a", {"--priority", "9"});
  std::string b = submit_cli(p, locking(p, "short-b", {"src/greeting.sh"}, {"true"}), "b");
  ServeProcess serve(p, {"--concurrency", "2"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  std::string ra = wait_held_back(p, a, b);
  ASSERT_FALSE(ra.empty());
  Ran rel =
      locks_cli(p, {"release", "--run", ra, "--path", "./src", "--reason", "hotfix needs src", "--json"});
  ASSERT_EQ(rel.exit_code, 0) << rel.err;
  json out = json::parse(rel.out);
  ASSERT_EQ(out["count"], 1);
  EXPECT_EQ(out["released"][0]["path"], "src/");
  json ib;
  ASSERT_TRUE(wait_until([&] { return ended(ib = queue_item(p, b)); }, std::chrono::seconds(60)))
      << ib.dump(2);
  EXPECT_EQ(queue_item(p, a)["state"], "running");
  // docs/ is still a's.
  json held = json::parse(locks_cli(p, {"list", "--json"}).out);
  ASSERT_EQ(held["count"], 1);
  EXPECT_EQ(held["locks"][0]["path"], "docs/");
  auto events = host_events(p);
  ASSERT_EQ(events.size(), 1u);
  expect_valid("event", events[0], "host event");
  EXPECT_EQ(events[0]["payload"]["by_kind"], "os_user");
  EXPECT_EQ(events[0]["payload"]["reason"], "hotfix needs src");
  Ran cancel = host({"--root", p.dir.path().string(), "queue", "cancel", a});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_TRUE(wait_until([&] { return ended(queue_item(p, a)); }, std::chrono::seconds(60)));
}

// A lock whose claimer is gone (here: a claim written into the queue as a serve of another host would,
// which this serve does not watch and so never renews) frees its paths when its TTL passes.
TEST(ServeLocks, AnExpiredLeakedLockIsIgnoredThenReaped) {
  RunProject p;
  std::string x = submit_cli(p, locking(p, "leaked-x", {"src/"}, {"true"}), "x",
                             {"--run-after", "2099-01-01T00:00:00Z"});  // never claimed by this serve
  ServeProcess serve(p, {"--concurrency", "2"});
  ASSERT_NE(serve.port(), 0) << serve.output();
  {
    const std::string expires = core::iso_from_ms(core::now_ms() + 3000);
    json claim{{"op", "claimed"}, {"item_id", x},      {"ts", core::now_utc_iso()},
               {"attempt", 1},    {"locks", {"src/"}}, {"lock_expires_at", expires}};
    std::string line = claim.dump() + "\n";
    int lock = ::open((runtime(p) / "queue.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(lock, 0);
    ASSERT_EQ(::flock(lock, LOCK_EX), 0);
    int fd = ::open((runtime(p) / "queue.jsonl").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    ::fsync(fd);
    ::close(fd);
    ::close(lock);
  }
  std::string b = submit_cli(
      p, locking(p, "blocked-b", {"src/greeting.sh"}, {"sed -i s/Helo/Hello/ src/greeting.sh"}), "b");
  // Held back by the leaked claim until it expires; then it runs.
  bool was_held = false;
  json ib;
  ASSERT_TRUE(wait_until(
      [&] {
        ib = queue_item(p, b);
        if (ib.value("waiting_on", "") == "lock src/ held by item " + x) was_held = true;
        return ended(ib);
      },
      std::chrono::seconds(60)))
      << ib.dump(2);
  EXPECT_TRUE(was_held) << "b was never seen waiting on the leaked lock";
  EXPECT_EQ(ib["status"], "success") << ib.dump(2);
  EXPECT_EQ(queue_item(p, x)["state"], "claimed") << "the leaked claim itself is not ended";
  // Reaped: a release in the queue and a host event, by cp-host.
  ASSERT_TRUE(wait_until([&] { return !host_events(p).empty(); }, std::chrono::seconds(10)));
  auto events = host_events(p);
  ASSERT_EQ(events.size(), 1u);
  expect_valid("event", events[0], "host event");
  EXPECT_EQ(events[0]["payload"]["how"], "expired");
  EXPECT_EQ(events[0]["payload"]["by"], "cp-host");
  EXPECT_EQ(events[0]["payload"]["by_kind"], "system");
  EXPECT_EQ(events[0]["payload"]["locks"][0]["item_id"], x);
  auto released = queue_ops(p, "locks_released", x);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].value("reason", "").rfind("expired at ", 0), 0u) << released[0].dump();
  EXPECT_EQ(json::parse(locks_cli(p, {"list", "--json"}).out)["count"], 0);
}

}  // namespace
}  // namespace cp::test
