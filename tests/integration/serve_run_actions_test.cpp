// A run's detail views and the actions on it, through a real `cp-host serve` over real runs and real git:
// contract, reports, artifacts, diff; verify, replay, re-queue from a run (and its preview), rollback;
// and their CLI twins. Each route's error classes are asked for too, and the security tests check that
// the bad thing did not happen (a ref that did not move, a checkout untouched, a file outside still there).
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

#include <random>

namespace cp::test {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Put together at run time, so the source holds nothing a secret scanner would flag.
std::string random_chars(size_t n, unsigned seed) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::mt19937 rng(seed);
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
  return s;
}

std::string error_code(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

class RunActions : public ::testing::Test {
 protected:
  void SetUp() override {
    viewer = add_token(p, "vera-viewer", "viewer");
    op = add_token(p, "otto-operator", "operator");
    admin = add_token(p, "ada-admin", "admin");
  }

  void start(bool scheduler = false, std::vector<std::string> env = {}) {
    std::vector<std::string> args{"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()};
    if (!scheduler) args.push_back("--no-scheduler");
    serve = std::make_unique<ServeProcess>(p, args, env);
    ASSERT_NE(serve->port(), 0) << serve->output();
  }

  HttpResponse get(const std::string& target, const std::string& token) {
    return http(serve->port(), "GET", target, bearer(token));
  }
  HttpResponse post(const std::string& target, const std::string& token, const std::string& body = "{}") {
    auto h = token.empty() ? std::map<std::string, std::string>{} : bearer(token);
    h["Content-Type"] = "application/json";
    return http(serve->port(), "POST", target, h, body);
  }

  // A sealed run of the fix-greeting contract; `keep`: its worktree is kept (rollback.strategy none).
  std::string run_fix(bool keep = false, std::vector<std::string> commands = {}) {
    json c = p.contract(commands.empty() ? std::vector<std::string>{"sed -i s/Helo/Hello/ src/greeting.sh"}
                                         : commands);
    if (keep) c["rollback"]["strategy"] = "none";
    auto r = p.run(c);
    EXPECT_FALSE(r.bundle.empty()) << r.ran.out << r.ran.err;
    return r.manifest.value("run_id", "");
  }

  fs::path bundle(const std::string& id) const { return p.dir / ".runtime-cache/cortexpilot/runs" / id; }
  json manifest(const std::string& id) const { return json::parse(read_file(bundle(id) / "manifest.json")); }
  std::string git(const std::string& cmd, const fs::path& where = {}) const {
    Ran r = sh("git " + cmd, where.empty() ? p.repo : where);
    EXPECT_EQ(r.exit_code, 0) << "git " << cmd << ": " << r.err;
    return trim(r.out);
  }
  std::string promote(const std::string& id, const std::string& branch) {
    auto r = post("/api/runs/" + id + "/evidence/promote", op, json{{"branch", branch}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false)["evidence"].value("commit", "");
  }
  // A commit on `branch` that adds `file` with `text`, made without a working tree (as a push would).
  void commit_on(const std::string& branch, const std::string& file, const std::string& text) {
    write_file(p.dir / "blob.txt", text);
    std::string idx = (p.dir / "side-index").string();
    Ran r = sh("export GIT_INDEX_FILE='" + idx + "' && git read-tree " + branch +
                   " && git update-index --add --cacheinfo 100644,$(git hash-object -w '" +
                   (p.dir / "blob.txt").string() + "')," + file + " && t=$(git write-tree) && " +
                   "c=$(git -c user.name=t -c user.email=t@l commit-tree $t -p " + branch +
                   " -m later) && git update-ref refs/heads/" + branch + " $c && rm -f '" + idx + "'",
               p.repo);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  json wait_item(const std::string& item) {
    json it;
    EXPECT_TRUE(wait_until(
        [&] {
          auto r = get("/api/queue/" + item, viewer);
          it = json::parse(r.body, nullptr, false);
          return it.is_object() && (it.value("state", "") == "done" || it.value("state", "") == "cancelled");
        },
        std::chrono::seconds(120)))
        << it.dump(2);
    return it;
  }

  // The error classes every run route shares: a malformed id, an undeclared query parameter, no token, an
  // unknown run. `method` GET or POST; `suffix` the route after /api/runs/{id} (or a full format string).
  void expect_common_errors(const std::string& method, const std::string& before, const std::string& after,
                            const std::string& id) {
    auto call = [&](const std::string& target, const std::string& token) {
      return method == "GET" ? get(target, token) : post(target, token);
    };
    auto bad = call(before + "-bad" + after, op);
    EXPECT_EQ(bad.status, 400) << method << " " << after << ": " << bad.body;
    EXPECT_EQ(error_code(bad), "bad_id");
    auto q = call(before + id + after + "?bogus=1", op);
    EXPECT_EQ(q.status, 400) << q.body;
    EXPECT_EQ(json::parse(q.body)["error"]["details"]["parameter"], "bogus");
    auto none =
        method == "GET" ? http(serve->port(), "GET", before + id + after) : post(before + id + after, "");
    EXPECT_EQ(none.status, 401) << after;
    auto missing = call(before + "no-such-run" + after, op);
    EXPECT_EQ(missing.status, 404) << after << ": " << missing.body;
  }

  RunProject p;
  std::string viewer, op, admin;
  std::unique_ptr<ServeProcess> serve;
};

}  // namespace

TEST_F(RunActions, ContractReportsArtifactsAndDiffOfARealRun) {
  start();
  std::string id = run_fix();
  ASSERT_FALSE(id.empty());
  const std::string base = "/api/runs/" + id;

  auto c = get(base + "/contract", viewer);
  ASSERT_EQ(c.status, 200) << c.body;
  json cj = json::parse(c.body);
  EXPECT_TRUE(cj["sha256_matches"]);
  EXPECT_EQ(cj["sha256"], manifest(id)["contract_sha256"]);
  EXPECT_EQ(cj["contract"], json::parse(read_file(bundle(id) / "contract.json")));
  EXPECT_EQ(cj["contract"]["contract"]["task_id"], "fix-greeting");
  EXPECT_EQ(c.headers["x-cp-redacted"], "0");

  auto r = get(base + "/reports", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  json rj = json::parse(r.body);
  EXPECT_EQ(rj["packs"]["proof_pack"]["verdict"], "success");
  EXPECT_EQ(rj["packs"]["proof_pack"], json::parse(read_file(bundle(id) / "reports/proof_pack.json")));
  EXPECT_EQ(rj["reports"]["gate_diff_scope"]["verdict"], "pass");
  EXPECT_TRUE(rj["reports"].contains("task_result"));
  EXPECT_FALSE(rj["reports"].contains("proof_pack")) << "packs are apart";
  EXPECT_TRUE(rj["skipped"].empty());

  auto a = get(base + "/artifacts", viewer);
  ASSERT_EQ(a.status, 200) << a.body;
  json aj = json::parse(a.body);
  std::map<std::string, json> listed;
  for (const auto& e : aj["artifacts"]) listed[e["path"]] = e;
  ASSERT_TRUE(listed.count("diff.patch")) << a.body;
  EXPECT_EQ(listed["diff.patch"]["type"], "file");
  EXPECT_EQ(listed["diff.patch"]["media_type"], "text/x-diff");
  EXPECT_EQ(listed["diff.patch"]["size"], fs::file_size(bundle(id) / "artifacts/diff.patch"));
  EXPECT_EQ(listed["changed_files.json"]["media_type"], "application/json");
  EXPECT_EQ(aj["count"], aj["artifacts"].size());
  EXPECT_FALSE(aj["truncated"]);
  // Every file listed is one the raw route serves.
  for (const auto& [path, e] : listed)
    if (e["type"] == "file") {
      EXPECT_EQ(get(base + "/artifacts/" + path, viewer).status, 200) << path;
    }

  auto d = get(base + "/diff", viewer);
  ASSERT_EQ(d.status, 200) << d.body;
  json dj = json::parse(d.body);
  ASSERT_EQ(dj["files"].size(), 1u) << d.body;
  const json& f = dj["files"][0];
  EXPECT_EQ(f["path"], "src/greeting.sh");
  EXPECT_EQ(f["status"], "modified");
  EXPECT_EQ(f["added"], 1);
  EXPECT_EQ(f["removed"], 1);
  json lines = f["hunks"][0]["lines"];
  EXPECT_NE(std::find(lines.begin(), lines.end(), "+echo \"Hello, world\""), lines.end()) << lines.dump();
  EXPECT_EQ(dj["totals"]["added"], 1);
  auto raw_patch = get(base + "/diff?format=patch", viewer);
  ASSERT_EQ(raw_patch.status, 200);
  EXPECT_EQ(raw_patch.headers["content-type"].rfind("text/x-diff", 0), 0u)
      << raw_patch.headers["content-type"];
  EXPECT_EQ(raw_patch.body, read_file(bundle(id) / "artifacts/diff.patch"));

  // Errors: every route's common classes, then each one's own.
  for (const char* route : {"/contract", "/reports", "/artifacts", "/diff"})
    expect_common_errors("GET", "/api/runs/", route, id);
  auto fmt = get(base + "/diff?format=yaml", viewer);
  EXPECT_EQ(fmt.status, 400);
  EXPECT_EQ(json::parse(fmt.body)["error"]["details"]["parameter"], "format");
  auto raw_bad = get(base + "/contract?raw=perhaps", admin);
  EXPECT_EQ(raw_bad.status, 400);
  EXPECT_EQ(json::parse(raw_bad.body)["error"]["details"]["parameter"], "raw");
  for (const char* route : {"/contract?raw=1", "/reports?raw=1", "/diff?raw=1"}) {
    auto v = get(base + route, viewer);
    EXPECT_EQ(v.status, 403) << route;
    EXPECT_EQ(error_code(v), "raw_needs_admin");
    auto ad = get(base + route, admin);
    EXPECT_EQ(ad.status, 200) << route;
    EXPECT_EQ(ad.headers["x-cp-raw"], "1");
  }
  EXPECT_EQ(get(base + "/artifacts?raw=1", admin).status, 400) << "the listing takes no raw";

  // A run that changed nothing has an empty diff; a bundle without its patch has none to show.
  std::string quiet = run_fix(false, {"true"});
  auto e = get("/api/runs/" + quiet + "/diff", viewer);
  ASSERT_EQ(e.status, 200) << e.body;
  EXPECT_TRUE(json::parse(e.body)["files"].empty());
  fs::remove(bundle(quiet) / "artifacts/diff.patch");
  EXPECT_EQ(get("/api/runs/" + quiet + "/diff", viewer).status, 404);
}

TEST_F(RunActions, TheDiffIsRedactedWholeBeforeItIsParsed) {
  std::vector<std::string> body;
  std::string key = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (unsigned i = 0; i < 5; ++i) key += (body.emplace_back(random_chars(70, i + 7))) + "\n";
  key += "-----END OPENSSH PRIVATE KEY-----\n";
  p.commit("keys/deploy_key", key);
  start();
  std::string id = run_fix(false, {"cp keys/deploy_key src/id_ed25519"});
  ASSERT_NE(read_file(bundle(id) / "artifacts/diff.patch").find(body[2]), std::string::npos);
  auto d = get("/api/runs/" + id + "/diff", viewer);
  ASSERT_EQ(d.status, 200) << d.body;
  for (const auto& l : body) EXPECT_EQ(d.body.find(l), std::string::npos) << "the key's body leaked";
  EXPECT_EQ(d.headers["x-cp-redacted"], "1");
  json dj = json::parse(d.body);
  ASSERT_EQ(dj["files"].size(), 1u);
  EXPECT_EQ(dj["files"][0]["added"], 7) << "the patch keeps its lines and counts";
  auto raw = get("/api/runs/" + id + "/diff?raw=1", admin);
  ASSERT_EQ(raw.status, 200);
  EXPECT_NE(raw.body.find(body[2]), std::string::npos) << "an admin's raw=1 reads it as written";
  auto pt = get("/api/runs/" + id + "/diff?format=patch", viewer);
  for (const auto& l : body) EXPECT_EQ(pt.body.find(l), std::string::npos);
}

TEST_F(RunActions, VerifySaysWhatRunsVerifySays) {
  start();
  std::string id = run_fix();
  auto v = post("/api/runs/" + id + "/verify", op, "");
  ASSERT_EQ(v.status, 200) << v.body;
  json vj = json::parse(v.body);
  EXPECT_TRUE(vj["ok"]);
  EXPECT_EQ(vj["state"], "intact");
  Ran cli = p.runs({"verify", id, "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(vj, json::parse(cli.out));

  expect_common_errors("POST", "/api/runs/", "/verify", id);
  EXPECT_EQ(post("/api/runs/" + id + "/verify", viewer).status, 403);
  EXPECT_EQ(post("/api/runs/" + id + "/verify", op, "[1]").status, 400);

  // A changed file: the same call says so.
  write_file(bundle(id) / "artifacts/diff.patch", read_file(bundle(id) / "artifacts/diff.patch") + "x\n");
  auto t = post("/api/runs/" + id + "/verify", op);
  ASSERT_EQ(t.status, 200) << t.body;
  json tj = json::parse(t.body);
  EXPECT_FALSE(tj["ok"]);
  EXPECT_EQ(tj["state"], "tampered");
  EXPECT_NE(tj["problems"].dump().find("diff.patch"), std::string::npos) << t.body;
  EXPECT_EQ(tj, json::parse(p.runs({"verify", id, "--json"}).out));
}

TEST_F(RunActions, ReplayAndRequeueFromARunRunTheSameContractSha) {
  start(true);
  std::string id = run_fix();
  const json m = manifest(id);
  const std::string sha = m["contract_sha256"], base = m["baseline_commit"];
  // The world moves on: the branch gets a commit, and the pack's defaults change, so compiling the contract
  // today would give another sha.
  p.commit("docs/later.md", "later\n");
  const std::string head = git("rev-parse HEAD");
  json pack = json::parse(read_file(p.dir / "packs/medium.json"));
  pack["gates"][0]["timeout_sec"] = 77;
  write_file(p.dir / "packs/medium.json", pack.dump(2));
  auto fresh = post("/api/intake/preview", op,
                    json{{"contract", p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"})}}.dump());
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  ASSERT_NE(json::parse(fresh.body)["contract_sha256"], sha) << "the pack change makes a new compile differ";

  auto pv = post("/api/queue/from-run/" + id + "/preview", op);
  ASSERT_EQ(pv.status, 200) << pv.body;
  json pj = json::parse(pv.body);
  EXPECT_EQ(pj["contract_sha256"], sha);
  EXPECT_EQ(pj["runner"], "tool");
  EXPECT_EQ(pj["pack"], "medium");
  EXPECT_EQ(pj["mode"], "from_run");
  EXPECT_EQ(pj["repo"], fs::weakly_canonical(p.repo).string());
  EXPECT_EQ(pj["baseline_commit"], head);
  EXPECT_EQ(pj["plan"]["kind"], "execution_plan_report");
  EXPECT_EQ(pj["plan"]["contract_sha256"], sha);
  EXPECT_TRUE(json::parse(get("/api/queue", viewer).body)["items"].empty()) << "a preview queues nothing";

  auto q = post("/api/queue/from-run/" + id, op);
  ASSERT_EQ(q.status, 202) << q.body;
  json item = json::parse(q.body);
  EXPECT_EQ(item["from_run"], id);
  EXPECT_EQ(q.headers["location"], "/api/queue/" + item["item_id"].get<std::string>());
  json done = wait_item(item["item_id"]);
  ASSERT_EQ(done["status"], "success") << done.dump(2);
  json again = manifest(done["run_id"]);
  EXPECT_EQ(again["contract_sha256"], sha);
  EXPECT_EQ(again["from_run"], id);
  EXPECT_EQ(again["baseline_commit"], head)
      << "from-run starts from the contract's baseline_ref as it is now";
  EXPECT_EQ(p.runs({"verify", done["run_id"]}).exit_code, 0);

  auto rp = post("/api/runs/" + id + "/replay", op, json{{"priority", 8}}.dump());
  ASSERT_EQ(rp.status, 202) << rp.body;
  json ritem = json::parse(rp.body);
  EXPECT_EQ(ritem["replay_of"], id);
  EXPECT_EQ(ritem["priority"], 8);
  json rdone = wait_item(ritem["item_id"]);
  ASSERT_EQ(rdone["status"], "success") << rdone.dump(2);
  json replayed = manifest(rdone["run_id"]);
  EXPECT_EQ(replayed["contract_sha256"], sha);
  EXPECT_EQ(replayed["replay_of"], id);
  EXPECT_EQ(replayed["baseline_commit"], base) << "a replay starts from the earlier run's baseline";
  EXPECT_TRUE(fs::exists(bundle(rdone["run_id"]) / "reports/run_compare_report.json"));

  // Errors, for each of the three routes.
  fs::path elsewhere = p.dir / "elsewhere";
  ASSERT_EQ(sh("git init -q '" + elsewhere.string() + "' && cd '" + elsewhere.string() +
               "' && git -c user.name=t -c user.email=t@l commit -q --allow-empty -m x")
                .exit_code,
            0);
  for (const std::string prefix :
       {"/api/runs/{}/replay", "/api/queue/from-run/{}", "/api/queue/from-run/{}/preview"}) {
    auto at = [&](const std::string& run) { return std::string(prefix).replace(prefix.find("{}"), 2, run); };
    const std::string path = at(id);
    const std::string before = prefix.substr(0, prefix.find("{}")),
                      after = prefix.substr(prefix.find("{}") + 2);
    expect_common_errors("POST", before, after, id);
    EXPECT_EQ(post(path, viewer).status, 403) << path;
    EXPECT_EQ(post(path, op, "[1]").status, 400) << path;
    auto unknown = post(path, op, R"({"priorty": 3})");
    EXPECT_EQ(unknown.status, 422) << unknown.body;
    EXPECT_EQ(json::parse(unknown.body)["error"]["details"]["pointer"], "/priorty");
    auto pri = post(path, op, R"({"priority": 12})");
    EXPECT_EQ(pri.status, 422) << pri.body;
    EXPECT_EQ(json::parse(pri.body)["error"]["details"]["pointer"], "/priority");
    auto repo = post(path, op, json{{"repo", elsewhere.string()}}.dump());
    EXPECT_EQ(repo.status, 422) << repo.body;
    EXPECT_EQ(error_code(repo), "repo_not_allowed");
    if (after != "/preview") {
      auto dep = post(path, op, R"({"depends_on": ["q-none"]})");
      EXPECT_EQ(dep.status, 409) << dep.body;
      auto when = post(path, op, R"({"run_after": "tomorrow"})");
      EXPECT_EQ(when.status, 422) << when.body;
    }
  }
  size_t items = json::parse(get("/api/queue", viewer).body)["items"].size();
  EXPECT_EQ(items, 2u) << "no refused request queued anything";

  // A bundle changed after its seal is not run again.
  write_file(bundle(id) / "contract.json", read_file(bundle(id) / "contract.json") + " ");
  for (const std::string& path : {"/api/runs/" + id + "/replay", "/api/queue/from-run/" + id,
                                  "/api/queue/from-run/" + id + "/preview"}) {
    auto u = post(path, op);
    EXPECT_EQ(u.status, 409) << path << ": " << u.body;
    EXPECT_EQ(error_code(u), "unverified");
  }
  EXPECT_EQ(json::parse(get("/api/queue", viewer).body)["items"].size(), items);
}

TEST_F(RunActions, RollbackOfAPromotedRunAddsARevertAndLeavesTheCheckoutAlone) {
  start();
  std::string id = run_fix();
  const std::string promoted = promote(id, "cp/fix");
  const json ev = manifest(id)["evidence"];
  const std::string parent = ev["parent"];
  ASSERT_EQ(git("rev-parse cp/fix"), promoted);
  // The user's checkout, with work in progress of its own: an unstaged edit and a staged new file.
  write_file(p.repo / "README.md", read_file(p.repo / "README.md") + "local edit\n");
  write_file(p.repo / "notes.txt", "mine\n");
  git("add notes.txt");
  const std::string head = git("rev-parse HEAD"), status = git("status --porcelain=v1"),
                    index = read_file(p.repo / ".git/index"), readme = read_file(p.repo / "README.md"),
                    greeting = read_file(p.repo / "src/greeting.sh"), branch = git("symbolic-ref HEAD");

  auto rb = post("/api/runs/" + id + "/rollback", op, R"({"reason": "wrong fix"})");
  const std::string index_after = read_file(p.repo / ".git/index");
  ASSERT_EQ(rb.status, 200) << rb.body;
  json rj = json::parse(rb.body)["rollback"];
  EXPECT_EQ(rj["action"], "reverted");
  EXPECT_EQ(rj["branch"], "cp/fix");
  EXPECT_EQ(rj["reverted_commit"], promoted);
  EXPECT_EQ(rj["by"], "otto-operator");
  const std::string revert = rj["commit"];
  EXPECT_EQ(git("rev-parse cp/fix"), revert);
  EXPECT_EQ(git("rev-parse " + revert + "^"), promoted);
  EXPECT_EQ(git("rev-parse " + revert + "^{tree}"), git("rev-parse " + parent + "^{tree}"))
      << "the revert's tree is the tree before the promotion";
  EXPECT_NE(git("show cp/fix:src/greeting.sh").find("Helo,"), std::string::npos);
  EXPECT_NE(git("log -1 --format=%B cp/fix").find("wrong fix"), std::string::npos);

  // The user's checkout: HEAD, index, files and status exactly as they were.
  EXPECT_EQ(git("rev-parse HEAD"), head);
  EXPECT_EQ(git("symbolic-ref HEAD"), branch);
  EXPECT_EQ(index_after, index);
  EXPECT_EQ(git("status --porcelain=v1"), status);
  EXPECT_EQ(read_file(p.repo / "README.md"), readme);
  EXPECT_EQ(read_file(p.repo / "src/greeting.sh"), greeting);

  // Recorded and sealed.
  json m = manifest(id);
  EXPECT_EQ(m["rollback"], rj);
  expect_valid("run_manifest", m, "manifest after rollback");
  RunProject::Result res;
  res.bundle = bundle(id);
  auto events = res.events();
  EXPECT_EQ(events.back()["type"], "RUN_ROLLED_BACK");
  for (const auto& e : events) expect_valid("event", e, "event " + e["type"].get<std::string>());
  EXPECT_EQ(p.runs({"verify", id}).exit_code, 0);

  // Once only; and a rolled-back run is not promoted again.
  auto again = post("/api/runs/" + id + "/rollback", op, R"({"reason": "twice"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(error_code(again), "already_rolled_back");
  EXPECT_EQ(git("rev-parse cp/fix"), revert);
  EXPECT_EQ(post("/api/runs/" + id + "/evidence/promote", op, R"({"branch": "cp/other"})").status, 409);
}

TEST_F(RunActions, RollbackTakesOnlyTheRunsChangeOutOfLaterCommits) {
  start();
  std::string id = run_fix();
  const std::string promoted = promote(id, "cp/later");
  commit_on("cp/later", "extra.txt", "someone else's work\n");
  const std::string tip = git("rev-parse cp/later");
  auto rb = post("/api/runs/" + id + "/rollback", op, R"({"reason": "undo"})");
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(git("rev-parse cp/later^"), tip);
  EXPECT_NE(git("show cp/later:src/greeting.sh").find("Helo,"), std::string::npos);
  EXPECT_EQ(git("show cp/later:extra.txt"), "someone else's work");
  EXPECT_EQ(git("diff --stat " + tip + " cp/later -- extra.txt"), "") << "later work kept";

  // When later commits changed the same lines, the change does not come out cleanly: refused, ref unmoved.
  std::string id2 = run_fix();
  promote(id2, "cp/clash");
  commit_on("cp/clash", "src/greeting.sh", "#!/bin/sh\necho \"Hello there\"\n");
  const std::string clash = git("rev-parse cp/clash");
  auto refused = post("/api/runs/" + id2 + "/rollback", op, R"({"reason": "undo"})");
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(error_code(refused), "does_not_revert");
  EXPECT_EQ(git("rev-parse cp/clash"), clash);
  EXPECT_FALSE(manifest(id2).contains("rollback"));
}

TEST_F(RunActions, RollbackIsRefusedWhileTheBranchIsCheckedOut) {
  start();
  std::string id = run_fix();
  const std::string promoted = promote(id, "cp/out");
  fs::path user_wt = p.dir / "user-wt";
  git("worktree add -q '" + user_wt.string() + "' cp/out");
  const std::string in_wt = read_file(user_wt / "src/greeting.sh");
  auto r = post("/api/runs/" + id + "/rollback", op, R"({"reason": "undo"})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(error_code(r), "branch_checked_out");
  EXPECT_NE(r.body.find(user_wt.filename().string()), std::string::npos) << "the message says where";
  EXPECT_EQ(git("rev-parse cp/out"), promoted) << "the ref did not move";
  EXPECT_EQ(read_file(user_wt / "src/greeting.sh"), in_wt);
  EXPECT_EQ(git("status --porcelain=v1", user_wt), "");
  EXPECT_FALSE(manifest(id).contains("rollback"));

  // Checked out in the main worktree: the same.
  git("worktree remove '" + user_wt.string() + "'");
  git("checkout -q cp/out");
  auto r2 = post("/api/runs/" + id + "/rollback", op, R"({"reason": "undo"})");
  EXPECT_EQ(r2.status, 409);
  EXPECT_EQ(git("rev-parse cp/out"), promoted);
  EXPECT_EQ(git("status --porcelain=v1"), "");
  // Once nobody has it checked out, it goes through.
  git("checkout -q main");
  EXPECT_EQ(post("/api/runs/" + id + "/rollback", op, R"({"reason": "undo"})").status, 200);
  EXPECT_NE(git("rev-parse cp/out"), promoted);
}

TEST_F(RunActions, RollbackDiscardsAKeptWorktreeAndNothingOutsideIt) {
  start();
  // Outside the worktree: a folder the run links to from inside it.
  fs::path outside = p.dir / "outside";
  write_file(outside / "precious.txt", "keep me\n");
  p.commit("scripts/link.sh", "ln -s '" + outside.string() + "' src/outside-link\nln -s '" +
                                  outside.string() +
                                  "/precious.txt' src/file-link\nsed -i s/Helo/Hello/ src/greeting.sh\n");
  std::string id = run_fix(true, {"sh scripts/link.sh"});
  json m = manifest(id);
  ASSERT_TRUE(m["worktree_kept"]) << m.dump(2);
  fs::path wt = m["worktree"].get<std::string>();
  ASSERT_TRUE(fs::is_symlink(wt / "src/outside-link"));
  ASSERT_NE(git("worktree list --porcelain").find(wt.string()), std::string::npos);

  auto rb = post("/api/runs/" + id + "/rollback", op, R"({"reason": "not needed"})");
  ASSERT_EQ(rb.status, 200) << rb.body;
  json rj = json::parse(rb.body)["rollback"];
  EXPECT_EQ(rj["action"], "worktree_discarded");
  EXPECT_FALSE(fs::exists(fs::symlink_status(wt))) << "the worktree is gone";
  EXPECT_EQ(git("worktree list --porcelain").find(wt.string()), std::string::npos) << "and its registration";
  EXPECT_EQ(read_file(outside / "precious.txt"), "keep me\n") << "nothing it linked to was touched";
  json after = manifest(id);
  EXPECT_FALSE(after["worktree_kept"]);
  EXPECT_EQ(after["rollback"]["worktree"], wt.string());
  EXPECT_EQ(p.runs({"verify", id}).exit_code, 0);
  // And in the governance lane, with who and why.
  fs::path gov = p.dir / ".runtime-cache/logs/governance/governance.jsonl";
  EXPECT_TRUE(wait_until(
      [&] { return fs::exists(gov) && read_file(gov).find(id + " rolled back") != std::string::npos; },
      std::chrono::seconds(10)))
      << (fs::exists(gov) ? read_file(gov) : "no governance log");
  EXPECT_NE(read_file(gov).find("not needed"), std::string::npos);
  // Its change was undone on purpose: it is not promoted afterwards.
  auto pr = post("/api/runs/" + id + "/evidence/promote", op, R"({"branch": "cp/after"})");
  EXPECT_EQ(pr.status, 409) << pr.body;
  EXPECT_NE(pr.body.find("rolled back"), std::string::npos) << pr.body;
  EXPECT_NE(sh("git rev-parse --verify --quiet refs/heads/cp/after", p.repo).exit_code, 0);
  auto again = post("/api/runs/" + id + "/rollback", op, R"({"reason": "twice"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(error_code(again), "already_rolled_back");
}

TEST_F(RunActions, RollbackRefusesWhatItMustNotDo) {
  json pack = json::parse(read_file(p.dir / "packs/high.json"));
  pack["approval"] = {{"approvers", 1}, {"deadline_sec", 3600}};
  write_file(p.dir / "packs/high.json", pack.dump(2));
  start();
  std::string plain = run_fix();  // worktree discarded, never promoted
  const std::string path = "/api/runs/" + plain + "/rollback";
  expect_common_errors("POST", "/api/runs/", "/rollback", plain);
  EXPECT_EQ(post(path, viewer, R"({"reason": "x"})").status, 403) << "an operator route";
  EXPECT_EQ(post(path, op, "[1]").status, 400);
  auto no_reason = post(path, op, "{}");
  EXPECT_EQ(no_reason.status, 422);
  EXPECT_EQ(json::parse(no_reason.body)["error"]["details"]["pointer"], "/reason");
  EXPECT_EQ(post(path, op, R"({"reason": 5})").status, 422);
  auto nothing = post(path, op, R"({"reason": "x"})");
  EXPECT_EQ(nothing.status, 409);
  EXPECT_EQ(error_code(nothing), "nothing_to_roll_back");

  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["runtime_options"]["pack"] = "high";
  auto waiting = p.run(c);
  ASSERT_EQ(waiting.ran.exit_code, 9) << waiting.ran.err;
  auto ns = post("/api/runs/" + waiting.manifest["run_id"].get<std::string>() + "/rollback", op,
                 R"({"reason": "x"})");
  EXPECT_EQ(ns.status, 409);
  EXPECT_EQ(error_code(ns), "not_sealed");

  std::string rejected = run_fix(true);
  ASSERT_EQ(post("/api/runs/" + rejected + "/evidence/reject", op).status, 200);
  auto rj = post("/api/runs/" + rejected + "/rollback", op, R"({"reason": "x"})");
  EXPECT_EQ(rj.status, 409);
  EXPECT_EQ(error_code(rj), "nothing_to_roll_back");

  // A bundle changed after its seal is not acted on: its worktree stays.
  std::string kept = run_fix(true);
  fs::path wt = manifest(kept)["worktree"].get<std::string>();
  write_file(bundle(kept) / "artifacts/changed_files.json", "[]");
  auto un = post("/api/runs/" + kept + "/rollback", op, R"({"reason": "x"})");
  EXPECT_EQ(un.status, 409);
  EXPECT_EQ(error_code(un), "unverified");
  EXPECT_TRUE(fs::exists(wt));
}

TEST_F(RunActions, AServerInsideARunRollsNothingBack) {
  std::string kept = run_fix(true);
  fs::path wt = manifest(kept)["worktree"].get<std::string>();
  const std::string before = read_file(bundle(kept) / "manifest.json");
  start(false, {"CP_RUN_ID=run-y"});
  auto r = post("/api/runs/" + kept + "/rollback", admin, R"({"reason": "x"})");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(error_code(r), "from_run");
  EXPECT_TRUE(fs::exists(wt));
  EXPECT_EQ(read_file(bundle(kept) / "manifest.json"), before);
}

TEST_F(RunActions, TheArtifactListingNeverFollowsASymlink) {
  start();
  fs::path outside = p.dir / "outside";
  write_file(outside / "secret-name.txt", "private\n");
  write_file(outside / "sub/deeper.txt", "private\n");
  // A live run makes links in its own scratch folder (artifacts/scratch), then waits.
  p.commit("scripts/links.sh", "ln -s '" + outside.string() + "' \"$CP_SCRATCH_DIR/dir-link\"\nln -s '" +
                                   outside.string() + "/secret-name.txt' \"$CP_SCRATCH_DIR/file-link\"\n" +
                                   "echo ready > \"$CP_SCRATCH_DIR/ready.txt\"\nsleep 300\n");
  json c = p.contract({"sh scripts/links.sh"});
  pid_t pid = p.spawn_run(c);
  fs::path ready;
  ASSERT_TRUE(wait_until(
      [&] {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/runs", ec))
          if (fs::exists(e.path() / "artifacts/scratch/ready.txt")) ready = e.path();
        return !ready.empty();
      },
      std::chrono::seconds(60)));
  auto live = get("/api/runs/" + ready.filename().string() + "/artifacts", viewer);
  ::kill(pid, SIGTERM);
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  ASSERT_EQ(live.status, 200) << live.body;
  json lj = json::parse(live.body);
  std::map<std::string, json> listed;
  for (const auto& e : lj["artifacts"]) listed[e["path"]] = e;
  EXPECT_EQ(listed["scratch/dir-link"]["type"], "symlink") << live.body;
  EXPECT_EQ(listed["scratch/file-link"]["type"], "symlink");
  EXPECT_FALSE(listed["scratch/file-link"].contains("media_type"));
  EXPECT_EQ(listed["scratch/ready.txt"]["type"], "file");
  EXPECT_EQ(live.body.find("secret-name"), std::string::npos) << "the linked folder was read";
  EXPECT_EQ(live.body.find("deeper"), std::string::npos);

  // Links planted in a sealed bundle afterwards (as someone with the files might): listed, not followed.
  std::string id = run_fix();
  fs::create_directory_symlink(outside, bundle(id) / "artifacts/tool/planted-dir");
  fs::create_symlink(outside / "secret-name.txt", bundle(id) / "artifacts/planted-file");
  auto a = get("/api/runs/" + id + "/artifacts", viewer);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_NE(a.body.find("\"tool/planted-dir\""), std::string::npos);
  EXPECT_EQ(a.body.find("secret-name"), std::string::npos) << a.body;
  EXPECT_EQ(a.body.find("deeper"), std::string::npos);
  EXPECT_EQ(get("/api/runs/" + id + "/artifacts/tool/planted-dir/secret-name.txt", viewer).status, 400);
}

TEST_F(RunActions, CliTwinsAnswerAsTheApi) {
  start();
  std::string id = run_fix();
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> a{"--root", p.dir.path().string()};
    a.insert(a.end(), args.begin(), args.end());
    return host(a, p.dir.path());
  };
  for (const std::string view : {"contract", "reports", "artifacts", "diff"}) {
    Ran r = cli({"runs", view, id, "--json"});
    ASSERT_EQ(r.exit_code, 0) << view << ": " << r.err;
    EXPECT_EQ(json::parse(r.out), json::parse(get("/api/runs/" + id + "/" + view, viewer).body)) << view;
    Ran human = cli({"runs", view, id});
    EXPECT_EQ(human.exit_code, 0) << view;
    EXPECT_FALSE(human.out.empty()) << view;
    EXPECT_EQ(cli({"runs", view, "no-such-run"}).exit_code, 1) << view;
  }
  EXPECT_NE(cli({"runs", "diff", id}).out.find("M src/greeting.sh"), std::string::npos);
  EXPECT_EQ(cli({"runs", "diff", id, "--patch"}).out, read_file(bundle(id) / "artifacts/diff.patch"));
  EXPECT_NE(cli({"runs", "rollback", "--help"}).out.find("compare-and-swap"), std::string::npos);

  EXPECT_EQ(cli({"runs", "rollback", id}).exit_code, 2) << "--reason is required";
  Ran nothing = cli({"runs", "rollback", id, "--reason", "x", "--json"});
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_EQ(json::parse(nothing.out)["code"], "nothing_to_roll_back");
  std::string kept = run_fix(true);
  Ran rb = cli({"runs", "rollback", kept, "--reason", "tidy up"});
  EXPECT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_FALSE(manifest(kept)["worktree_kept"]);
  EXPECT_EQ(manifest(kept)["rollback"]["by_kind"], "os_user");

  Ran pv = cli({"queue", "from-run", id, "--preview", "--json"});
  ASSERT_EQ(pv.exit_code, 0) << pv.err;
  EXPECT_EQ(json::parse(pv.out)["contract_sha256"], manifest(id)["contract_sha256"]);
  EXPECT_TRUE(json::parse(get("/api/queue", viewer).body)["items"].empty());
  Ran fr = cli({"queue", "from-run", id, "--json"});
  ASSERT_EQ(fr.exit_code, 0) << fr.err;
  EXPECT_EQ(json::parse(fr.out)["from_run"], id);
  Ran rp = cli({"queue", "replay", id, "--json", "--priority", "2"});
  ASSERT_EQ(rp.exit_code, 0) << rp.err;
  EXPECT_EQ(json::parse(rp.out)["replay_of"], id);
  EXPECT_EQ(json::parse(get("/api/queue", viewer).body)["items"].size(), 2u);
  EXPECT_EQ(cli({"queue", "from-run", "no-such-run"}).exit_code, 1);
  EXPECT_EQ(cli({"run", "--from-run", id, (p.dir / "x.json").string()}).exit_code, 2)
      << "a contract and --from-run exclude each other";
}

}  // namespace cp::test
