// The cross-run views of `cp-host serve` over real HTTP, with runs made by the CLI in a real git repository:
// the contracts under the root with their validation state, the policies and packs, the kept worktrees, and
// one gate's results across runs. Hostile files (links out of the root, a FIFO, a 50 MB contract) must be
// listed as errors, never read, never stop the listing.
#include "control/kept_worktrees.hpp"
#include "core/sha256.hpp"
#include "integration/serve_fixture.hpp"

#include <sys/stat.h>

using namespace cp::test;

namespace {

class ViewsApi : public ::testing::Test {
 protected:
  void SetUp() override {
    viewer = add_token(p, "vera-viewer", "viewer");
    serve = std::make_unique<ServeProcess>(
        p, std::vector<std::string>{"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
    ASSERT_NE(serve->port(), 0) << serve->output();
  }

  HttpResponse get(const std::string& path) { return http(serve->port(), "GET", path, bearer(viewer)); }
  json get_json(const std::string& path) {
    auto r = get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  // The entry of `path` in a listing's array, or null.
  static json entry(const json& list, const std::string& path) {
    for (const auto& e : list)
      if (e.value("path", "") == path) return e;
    return nullptr;
  }
  // 400 naming the parameter.
  void expect_bad(const std::string& path, const std::string& parameter) {
    auto r = get(path);
    EXPECT_EQ(r.status, 400) << path << ": " << r.body;
    json b = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(b.is_object()) << r.body;
    EXPECT_EQ(b["error"]["details"]["parameter"], parameter) << path << ": " << r.body;
  }
  // A contract under the root's contracts/ (compact, so a test can edit it byte for byte).
  void contract_file(const std::string& name, const std::string& text) {
    write_file(p.dir / "contracts" / name, text);
  }
  // A sealed run of `contract`; waits until the server's catalogue lists it.
  std::string sealed_run(const json& contract, int want_exit) {
    auto r = p.run(contract);
    EXPECT_EQ(r.ran.exit_code, want_exit) << r.ran.out << r.ran.err;
    std::string id = r.manifest.value("run_id", "");
    // The catalog may first see the run while it is still going; it is ready once listed as sealed.
    EXPECT_TRUE(wait_until(
        [&] {
          json runs = json::parse(get("/api/runs?limit=1000").body, nullptr, false);
          if (!runs.is_object()) return false;
          for (const auto& r : runs["runs"])
            if (r.value("run_id", "") == id) return r.value("status", "") == "sealed";
          return false;
        },
        std::chrono::seconds(10)));
    return id;
  }
  fs::path worktrees() const { return p.dir / ".runtime-cache/cortexpilot/worktrees"; }

  RunProject p;
  std::string viewer;
  std::unique_ptr<ServeProcess> serve;
};

}  // namespace

TEST_F(ViewsApi, ContractsAreListedWithWhatValidateSaysAndTheCacheFollowsTheFiles) {
  json good = p.contract({"true"});
  good["task_id"] = "good-one";
  contract_file("good.json", good.dump());
  json bad = p.contract({"true"});
  bad["task_id"] = "bad-one";
  bad["allowed_paths"] = json::array({"src/"});
  std::string bad_text = bad.dump();
  const std::string fine = "\"allowed_paths\":[\"src/\"]", broken = "\"allowed_paths\":\"src/!!\"";
  ASSERT_EQ(fine.size(), broken.size());
  ASSERT_NE(bad_text.find(fine), std::string::npos);
  bad_text.replace(bad_text.find(fine), fine.size(), broken);
  contract_file("nested/bad.json", bad_text);

  json l = get_json("/api/contracts");
  json g = entry(l["contracts"], "contracts/good.json");
  ASSERT_TRUE(g.is_object()) << l.dump(2);
  EXPECT_EQ(g["state"], "valid") << g.dump(2);
  EXPECT_EQ(g["kind"], "task_contract");
  EXPECT_EQ(g["task_id"], "good-one");
  EXPECT_EQ(g["runner"], "tool");
  EXPECT_EQ(g["role"], "WORKER");
  EXPECT_TRUE(g["diagnostics"].empty());
  json b = entry(l["contracts"], "contracts/nested/bad.json");
  ASSERT_TRUE(b.is_object()) << l.dump(2);
  EXPECT_EQ(b["state"], "invalid");
  EXPECT_EQ(b["task_id"], "bad-one");
  ASSERT_FALSE(b["diagnostics"].empty());
  EXPECT_EQ(b["diagnostics"][0]["pointer"], "/allowed_paths");
  EXPECT_GE(l["valid"].get<int>(), 1);
  EXPECT_EQ(l["invalid"], 1);
  EXPECT_EQ(l["truncated"], false);

  // The same words `cp-host validate` gives for that file.
  Ran v = host({"--root", p.dir.path().string(), "validate", "--format", "json", "contracts/nested/bad.json"},
               p.dir.path());
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  json cli = json::parse(v.out);
  ASSERT_EQ(cli["diagnostics"].size(), b["diagnostics"].size()) << v.out;
  for (size_t i = 0; i < cli["diagnostics"].size(); ++i)
    for (const char* k : {"file", "line", "pointer", "rule", "message", "expected", "value"})
      EXPECT_EQ(b["diagnostics"][i][k], cli["diagnostics"][i][k]) << k;

  // Cached by (path, mtime, size): a change that keeps all three is not seen...
  fs::path bad_path = p.dir / "contracts/nested/bad.json";
  auto mtime = fs::last_write_time(bad_path);
  std::string fixed = bad_text;
  fixed.replace(fixed.find(broken), broken.size(), fine);
  write_file(bad_path, fixed);
  fs::last_write_time(bad_path, mtime);
  EXPECT_EQ(entry(get_json("/api/contracts")["contracts"], "contracts/nested/bad.json")["state"], "invalid");
  // ...and one that moves the mtime is validated again.
  fs::last_write_time(bad_path, mtime + std::chrono::seconds(5));
  EXPECT_EQ(entry(get_json("/api/contracts")["contracts"], "contracts/nested/bad.json")["state"], "valid");

  // A contract is only as valid as the pack it names: a pack broken later makes it invalid.
  const std::string pack_id = good["runtime_options"]["pack"];
  json pack = json::parse(read_file(p.dir / "packs" / (pack_id + ".json")));
  pack["gates"] = "all of them";
  write_file(p.dir / "packs" / (pack_id + ".json"), pack.dump(2));
  g = entry(get_json("/api/contracts")["contracts"], "contracts/good.json");
  EXPECT_EQ(g["state"], "invalid") << g.dump(2);
  ASSERT_FALSE(g["diagnostics"].empty());
  EXPECT_EQ(g["diagnostics"][0]["pointer"], "/runtime_options/pack") << g.dump(2);
  // Named by its path under the root: the validator's private copy never shows.
  EXPECT_NE(g["diagnostics"][0]["message"].get<std::string>().find("(packs/" + pack_id + ".json)"),
            std::string::npos)
      << g.dump(2);
}

TEST_F(ViewsApi, HostileContractFilesAreListedAsErrorsAndNeverRead) {
  json good = p.contract({"true"});
  contract_file("good.json", good.dump());
  // Outside the root: a file and a folder whose contents must never reach the answer.
  TempDir outside;
  json secret = p.contract({"true"});
  secret["task_id"] = 12345;  // invalid, so a validator would quote it
  secret["title"] = "OUTSIDE-MARKER-7f3a";
  write_file(outside / "secret.json", secret.dump());
  write_file(outside / "more/inner.json", secret.dump());
  fs::create_symlink(outside / "secret.json", p.dir / "contracts/evil.json");
  fs::create_directory_symlink(outside / "more", p.dir / "contracts/linked");
  // A link inside the root is not followed either.
  fs::create_symlink(p.dir / "contracts/good.json", p.dir / "contracts/alias.json");
  // A FIFO would block a reader forever; a 50 MB file would take 50 MB.
  ASSERT_EQ(::mkfifo((p.dir / "contracts/pipe.json").c_str(), 0644), 0);
  write_file(p.dir / "contracts/huge.json", "{");
  fs::resize_file(p.dir / "contracts/huge.json", 50u << 20);

  auto r = get("/api/contracts");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("OUTSIDE-MARKER"), std::string::npos) << "a file outside the root was read";
  json l = json::parse(r.body);
  json evil = entry(l["contracts"], "contracts/evil.json");
  ASSERT_TRUE(evil.is_object()) << l.dump(2);
  EXPECT_EQ(evil["state"], "error");
  EXPECT_EQ(evil["error"]["code"], "symlink");
  EXPECT_NE(evil["error"]["message"].get<std::string>().find("outside the runtime root"), std::string::npos);
  json linked = entry(l["contracts"], "contracts/linked");
  ASSERT_TRUE(linked.is_object()) << l.dump(2);
  EXPECT_EQ(linked["error"]["code"], "symlink");
  EXPECT_TRUE(entry(l["contracts"], "contracts/linked/inner.json").is_null());
  json alias = entry(l["contracts"], "contracts/alias.json");
  EXPECT_EQ(alias["error"]["code"], "symlink");
  EXPECT_NE(alias["error"]["message"].get<std::string>().find("inside the runtime root"), std::string::npos);
  EXPECT_EQ(entry(l["contracts"], "contracts/pipe.json")["error"]["code"], "not_regular");
  json huge = entry(l["contracts"], "contracts/huge.json");
  EXPECT_EQ(huge["state"], "error");
  EXPECT_EQ(huge["error"]["code"], "too_large");
  EXPECT_EQ(huge["size"], 50u << 20);
  // The rest of the listing is whole.
  EXPECT_EQ(entry(l["contracts"], "contracts/good.json")["state"], "valid");
  EXPECT_EQ(l["errors"], 5) << l.dump(2);

  // A contracts/ folder that is itself a link out of the root is one error entry, and nothing beneath it.
  fs::rename(p.dir / "contracts", p.dir / "contracts.real");
  fs::create_directory_symlink(outside / "more", p.dir / "contracts");
  r = get("/api/contracts");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("OUTSIDE-MARKER"), std::string::npos);
  l = json::parse(r.body);
  ASSERT_EQ(l["count"], 1) << l.dump(2);
  EXPECT_EQ(l["contracts"][0]["path"], "contracts");
  EXPECT_EQ(l["contracts"][0]["error"]["code"], "symlink");
}

TEST_F(ViewsApi, PoliciesAndPacksShowKindShaContentAndATamperedFileIsInvalid) {
  json l = get_json("/api/policies");
  json allow = entry(l["policies"], "policies/command_allowlist.json");
  ASSERT_TRUE(allow.is_object()) << l.dump(2);
  EXPECT_EQ(allow["kind"], "command_allowlist");
  EXPECT_EQ(allow["state"], "valid") << allow.dump(2);
  std::string text = read_file(p.dir / "policies/command_allowlist.json");
  EXPECT_EQ(allow["sha256"], cp::core::sha256_hex(text));
  EXPECT_EQ(allow["content"], json::parse(text));
  json low = entry(l["packs"], "packs/low.json");
  ASSERT_TRUE(low.is_object()) << l.dump(2);
  EXPECT_EQ(low["kind"], "pack");
  EXPECT_EQ(low["state"], "valid");
  EXPECT_EQ(low["content"]["pack_id"], "low");
  EXPECT_EQ(l["invalid"], 0) << l.dump(2);

  // Tampered: a field of the wrong type.
  json fa = json::parse(read_file(p.dir / "policies/forbidden_actions.json"));
  fa["actions"] = "none";
  std::string tampered = fa.dump(2);
  write_file(p.dir / "policies/forbidden_actions.json", tampered);
  l = get_json("/api/policies");
  json f = entry(l["policies"], "policies/forbidden_actions.json");
  EXPECT_EQ(f["state"], "invalid") << f.dump(2);
  ASSERT_FALSE(f["diagnostics"].empty());
  EXPECT_EQ(f["diagnostics"][0]["pointer"], "/actions");
  EXPECT_EQ(f["sha256"], cp::core::sha256_hex(tampered));
  EXPECT_EQ(l["invalid"], 1);
  // Not JSON at all: invalid, content null.
  write_file(p.dir / "policies/policy_rules.json", "{ not json");
  f = entry(get_json("/api/policies")["policies"], "policies/policy_rules.json");
  EXPECT_EQ(f["state"], "invalid");
  EXPECT_TRUE(f["content"].is_null());
  EXPECT_EQ(f["diagnostics"][0]["rule"], "json");
}

TEST_F(ViewsApi, KeptWorktreesShowTheirRunAgeAndSizeWithoutFollowingLinks) {
  json keep = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "sh scripts/big.sh"});
  p.commit("scripts/big.sh", "head -c 1048576 /dev/zero > src/blob.bin\n");
  keep["allowed_paths"] = json::array({"src/"});
  keep["rollback"]["strategy"] = "none";
  std::string kept = sealed_run(keep, 0);
  std::string discarded = sealed_run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}), 0);
  ASSERT_TRUE(fs::is_directory(worktrees() / kept));
  ASSERT_FALSE(fs::exists(worktrees() / discarded));
  // A link in the worktree to a large folder outside: counted as a link, never walked.
  TempDir outside;
  write_file(outside / "big.bin", "x");
  fs::resize_file(outside / "big.bin", 64u << 20);
  fs::create_directory_symlink(outside.path(), worktrees() / kept / "src/outside");
  // A worktree whose bundle is gone.
  write_file(worktrees() / "orphan-run/file.txt", "left behind");

  json l = get_json("/api/worktrees");
  ASSERT_EQ(l["count"], 2) << l.dump(2);
  json k, orphan;
  for (const auto& w : l["worktrees"]) (w["run_id"] == kept ? k : orphan) = w;
  ASSERT_TRUE(k.is_object()) << l.dump(2);
  EXPECT_TRUE(k["run_exists"]);
  EXPECT_EQ(k["run"]["status"], "sealed");
  EXPECT_EQ(k["run"]["verdict"], "success");
  EXPECT_EQ(k["promoted"], false);
  EXPECT_EQ(k["size_complete"], true);
  EXPECT_GE(k["size_bytes"].get<uint64_t>(), 1u << 20) << "the 1 MiB file the run wrote counts";
  EXPECT_LT(k["size_bytes"].get<uint64_t>(), 32u << 20) << "the linked 64 MiB outside does not";
  EXPECT_GE(k["age_sec"].get<long long>(), 0);
  EXPECT_EQ(orphan["run_id"], "orphan-run");
  EXPECT_FALSE(orphan["run_exists"]);
  EXPECT_TRUE(orphan["run"].is_null());

  // The CLI twin says the same.
  Ran cli = host({"--root", p.dir.path().string(), "worktrees", "list", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  json c = json::parse(cli.out);
  ASSERT_EQ(c["count"], 2);
  for (size_t i = 0; i < 2; ++i)
    for (const char* key : {"run_id", "size_bytes", "size_complete", "run_exists", "promoted", "run"})
      EXPECT_EQ(c["worktrees"][i][key], l["worktrees"][i][key]) << key;
  Ran text = host({"--root", p.dir.path().string(), "worktrees", "list"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find(kept), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("no such run"), std::string::npos) << text.out;

  // The walk stops at its limit and says the size is a lower bound.
  cp::control::WorktreeListLimits small;
  small.max_entries_per_worktree = 3;
  auto bounded = cp::control::list_kept_worktrees(p.dir.path(), small);
  ASSERT_EQ(bounded.worktrees.size(), 2u);
  for (const auto& w : bounded.worktrees) {
    EXPECT_EQ(w.size.complete, w.name != kept) << w.name;
    EXPECT_EQ(w.size.entries, w.name == kept ? 3u : 1u) << w.name;
  }
}

TEST_F(ViewsApi, GateResultsAcrossRunsFilteredAndPaged) {
  std::string passed = sealed_run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}), 0);
  std::string failed =
      sealed_run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh", "cp src/greeting.sh leaked.sh"}), 5);

  json all = get_json("/api/gates/diff_scope/results");
  ASSERT_EQ(all["count"], 2) << all.dump(2);
  EXPECT_EQ(all["gate_id"], "diff_scope");
  EXPECT_EQ(all["results"][0]["run_id"], failed) << "newest first";
  EXPECT_EQ(all["results"][0]["verdict"], "fail");
  EXPECT_EQ(all["results"][0]["run_verdict"], "denied");
  EXPECT_EQ(all["results"][0]["summary"], "1 changed path(s) outside allowed_paths");
  EXPECT_NE(all["results"][0]["next_action"].get<std::string>().find("allowed_paths"), std::string::npos);
  EXPECT_EQ(all["results"][0]["report"], "reports/gate_diff_scope.json");
  EXPECT_EQ(all["results"][1]["run_id"], passed);
  EXPECT_EQ(all["results"][1]["verdict"], "pass");
  EXPECT_FALSE(all["results"][1]["created_at"].get<std::string>().empty());
  EXPECT_TRUE(all["next_cursor"].is_null());

  json fails = get_json("/api/gates/diff_scope/results?verdict=fail");
  ASSERT_EQ(fails["count"], 1);
  EXPECT_EQ(fails["results"][0]["run_id"], failed);
  EXPECT_EQ(get_json("/api/gates/diff_scope/results?verdict=warn")["count"], 0);

  json first = get_json("/api/gates/diff_scope/results?limit=1");
  ASSERT_EQ(first["count"], 1);
  EXPECT_EQ(first["results"][0]["run_id"], failed);
  ASSERT_TRUE(first["next_cursor"].is_string());
  json second =
      get_json("/api/gates/diff_scope/results?limit=1&cursor=" + first["next_cursor"].get<std::string>());
  ASSERT_EQ(second["count"], 1);
  EXPECT_EQ(second["results"][0]["run_id"], passed);
  EXPECT_TRUE(second["next_cursor"].is_null());

  // A loaded gate no run used: no results, not an error. No such gate at all: 404 naming the known ones.
  json none = get_json("/api/gates/policy/results");
  EXPECT_EQ(none["count"], 0);
  auto unknown = get("/api/gates/no_such_gate/results");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  json u = json::parse(unknown.body);
  EXPECT_EQ(u["error"]["code"], "unknown_gate");
  EXPECT_NE(u["error"]["message"].get<std::string>().find("diff_scope"), std::string::npos);
  EXPECT_NE(
      std::find(u["error"]["details"]["known"].begin(), u["error"]["details"]["known"].end(), "diff_scope"),
      u["error"]["details"]["known"].end());

  // A report quoting a secret is served redacted; one too large is named, not read.
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  json rep = json::parse(read_file(runs / failed / "reports/gate_diff_scope.json"));
  const std::string token = "ghp_" + std::string(36, 'a');
  rep["summary"] = "saw " + token;
  write_file(runs / failed / "reports/gate_diff_scope.json", rep.dump());
  write_file(runs / passed / "reports/gate_diff_scope.json", "{");
  fs::resize_file(runs / passed / "reports/gate_diff_scope.json", 2u << 20);
  auto red = get("/api/gates/diff_scope/results");
  ASSERT_EQ(red.status, 200) << red.body;
  EXPECT_EQ(red.body.find(token), std::string::npos);
  EXPECT_EQ(red.headers["x-cp-redacted"], "1");
  json rj = json::parse(red.body);
  EXPECT_NE(rj["results"][0]["summary"].get<std::string>().find("[REDACTED"), std::string::npos);
  EXPECT_NE(rj["results"][1]["report_error"].get<std::string>().find("larger than 1 MiB"), std::string::npos);
  EXPECT_EQ(rj["results"][1]["verdict"], "pass") << "the verdict comes from the catalogue";
}

TEST_F(ViewsApi, ErrorsNameWhatIsWrong) {
  for (const char* path :
       {"/api/contracts", "/api/policies", "/api/worktrees", "/api/gates/diff_scope/results"}) {
    auto r = http(serve->port(), "GET", path);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(http(serve->port(), "GET", path, bearer("not-a-token")).status, 401) << path;
  }
  expect_bad("/api/contracts?limit=5", "limit");
  expect_bad("/api/policies?kind=pack", "kind");
  expect_bad("/api/worktrees?run=x", "run");
  expect_bad("/api/gates/diff_scope/results?verdict=maybe", "verdict");
  expect_bad("/api/gates/diff_scope/results?limit=0", "limit");
  expect_bad("/api/gates/diff_scope/results?limit=5abc", "limit");
  expect_bad("/api/gates/diff_scope/results?limit=201", "limit");
  expect_bad("/api/gates/diff_scope/results?cursor=zz", "cursor");
  expect_bad("/api/gates/diff_scope/results?status=fail", "status");
  expect_bad("/api/gates/Diff%24Scope/results", "gate_id");
  expect_bad("/api/gates/..%2F..%2Fetc/results", "gate_id");
}
