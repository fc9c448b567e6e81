// Browser contracts before anything runs: runtime_options.browser_tasks checked against its schema with
// pointers into the contract, the contract's URL policy within the operator's and loopback-only without
// network (validate and run refuse alike), the operator policy compiled into contract.json, and the browser
// section of `cp-host intake preview`.
#include "integration/run_project.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace cp::test {
namespace {

bool chromium_installed() {
  return sh("command -v chromium >/dev/null").exit_code == 0;
}

json example() {
  return json::parse(read_file(fs::path(CP_SOURCE_DIR) / "contracts/examples/page-brief.json"));
}

struct BrowserContract : ::testing::Test {
  RunProject p;

  Ran cli(std::vector<std::string> args) const {
    std::vector<std::string> argv{CP_HOST_BIN, "--plugins", p.plugins.string(), "--root",
                                  p.dir.path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, p.dir.path());
  }
  fs::path write_contract(const json& c, const std::string& name = "c.json") const {
    fs::path f = p.dir / "contracts" / name;
    write_file(f, c.dump(2));
    return f;
  }
  // pointer -> diagnostic, from `validate --format json`.
  std::map<std::string, json> validate(const fs::path& f, int want_exit) const {
    Ran r = cli({"validate", "--format", "json", f.string()});
    EXPECT_EQ(r.exit_code, want_exit) << r.out << r.err;
    std::map<std::string, json> out;
    json j = json::parse(r.out, nullptr, false);
    if (j.is_object())
      for (const auto& d : j["diagnostics"]) out[d["pointer"]] = d;
    return out;
  }
  // `cp-host run` refuses before anything is written: exit 2, the pointer named, no bundle.
  void expect_run_refused(const fs::path& f, const std::string& pointer) const {
    Ran r = cli({"run", f.string(), "--repo", p.repo.string()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(pointer), std::string::npos) << r.out << r.err;
    EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs")) << "a refused contract wrote a run";
  }
  void operator_policy(const json& origins) const {
    json pol = json::parse(read_file(p.dir / "policies/browser_policy.json"));
    pol["allowed_origins"] = origins;
    write_file(p.dir / "policies/browser_policy.json", pol.dump(2));
  }
};

TEST_F(BrowserContract, TheShippedExampleIsValid) {
  Ran r = run({CP_HOST_BIN, "--plugins", p.plugins.string(), "--root", CP_SOURCE_DIR, "validate",
               "contracts/examples/page-brief.json"},
              CP_SOURCE_DIR);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(BrowserContract, ABadStepIsReportedAtItsPointerInTheContract) {
  json c = example();
  c["runtime_options"]["browser_tasks"]["tasks"][0]["script"] =
      json::array({{{"action", "wait_for"}, {"selector", "body"}}, {{"action", "navigate"}}});
  fs::path f = write_contract(c);
  auto d = validate(f, 1);
  const std::string ptr = "/runtime_options/browser_tasks/tasks/0/script/1/url";
  ASSERT_TRUE(d.count(ptr)) << json(d).dump(2);
  EXPECT_EQ(d[ptr]["rule"], "required");
  EXPECT_EQ(d[ptr]["schema"], "browser_tasks");
  EXPECT_EQ(d[ptr]["message"], "missing required property 'url'");
  // The line is the step's: the one holding "navigate".
  std::istringstream in(read_file(f));
  std::string line;
  int navigate_line = 0;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find("\"navigate\"") != std::string::npos) navigate_line = n;
  EXPECT_EQ(d[ptr]["line"].get<int>(), navigate_line - 1) << d[ptr].dump();  // the step's opening brace
  // Only the missing url: not the conditional rule that holds it, nothing else of the contract.
  EXPECT_EQ(d.size(), 1u) << json(d).dump(2);
  expect_run_refused(f, ptr);

  // Valid tasks in a contract that breaks its schema elsewhere: those errors, no crash (exit 1, not 3).
  c = example();
  c["runtime_options"]["pack"] = 5;
  c["tool_permissions"]["network"] = 7;
  auto broken = validate(write_contract(c, "broken.json"), 1);
  EXPECT_TRUE(broken.count("/runtime_options/pack")) << json(broken).dump(2);
  EXPECT_TRUE(broken.count("/tool_permissions/network")) << json(broken).dump(2);
}

TEST_F(BrowserContract, ANonLoopbackOriginIsRefusedWhenTheRunHasNoNetwork) {
  operator_policy(json::array({"http://127.0.0.1:*", "https://example.com"}));
  json c = example();
  c["runtime_options"]["browser_tasks"]["browser_policy"]["allowed_origins"] =
      json::array({"http://127.0.0.1:8000", "https://example.com"});
  fs::path f = write_contract(c);  // pack medium, tool_permissions.network deny
  auto d = validate(f, 1);
  const std::string ptr = "/runtime_options/browser_tasks/browser_policy/allowed_origins/1";
  ASSERT_TRUE(d.count(ptr)) << json(d).dump(2);
  EXPECT_EQ(d[ptr]["rule"], "xref:browser_policy");
  EXPECT_NE(d[ptr]["message"].get<std::string>().find("not a loopback origin"), std::string::npos) << d[ptr];
  EXPECT_NE(d[ptr]["expected"].get<std::string>().find("tool_permissions.network to allow"),
            std::string::npos);
  EXPECT_EQ(d.size(), 1u) << json(d).dump(2);
  expect_run_refused(f, ptr);

  // The same origin with network allowed, under a pack whose ceiling allows it: valid.
  c["runtime_options"]["pack"] = "low";
  c["tool_permissions"]["network"] = "allow";
  validate(write_contract(c, "net.json"), 0);
  // A network-allowing contract under a pack that denies it is still a run without network.
  c["runtime_options"]["pack"] = "high";
  EXPECT_TRUE(validate(write_contract(c, "high.json"), 1).count(ptr));
}

TEST_F(BrowserContract, AnOriginOutsideTheOperatorPolicyIsRefused) {
  json c = example();
  c["runtime_options"]["pack"] = "low";
  c["tool_permissions"]["network"] = "allow";
  c["runtime_options"]["browser_tasks"]["browser_policy"] = {
      {"allowed_origins", {"http://localhost:8000", "https://docs.example.com"}}, {"allow_file_urls", true}};
  fs::path f = write_contract(c);
  auto d = validate(f, 1);
  const std::string base = "/runtime_options/browser_tasks/browser_policy";
  EXPECT_FALSE(d.count(base + "/allowed_origins/0")) << "within the shipped http://localhost:*";
  ASSERT_TRUE(d.count(base + "/allowed_origins/1")) << json(d).dump(2);
  std::string m = d[base + "/allowed_origins/1"]["message"];
  EXPECT_NE(m.find("not within the operator's browser policy"), std::string::npos) << m;
  EXPECT_NE(m.find("http://127.0.0.1:*"), std::string::npos)
      << "the message says what the operator allows: " << m;
  EXPECT_NE(d[base + "/allowed_origins/1"]["expected"].get<std::string>().find("may only narrow"),
            std::string::npos);
  ASSERT_TRUE(d.count(base + "/allow_file_urls"));
  EXPECT_EQ(d.size(), 2u) << json(d).dump(2);
  expect_run_refused(f, base + "/allowed_origins/1");

  // The operator allows it: the contract is valid.
  operator_policy(json::array({"http://localhost:*", "https://*.example.com"}));
  c["runtime_options"]["browser_tasks"]["browser_policy"].erase("allow_file_urls");
  validate(write_contract(c), 0);
  // An invalid operator policy is named instead of guessed from.
  write_file(p.dir / "policies/browser_policy.json",
             R"({"policy":"browser_policy","allowed_origins":["ftp://x"]})");
  auto bad = validate(write_contract(c), 1);
  ASSERT_TRUE(bad.count("/runtime_options/browser_tasks")) << json(bad).dump(2);
  EXPECT_NE(bad["/runtime_options/browser_tasks"]["message"].get<std::string>().find(
                "browser_policy.json is invalid"),
            std::string::npos);
}

TEST_F(BrowserContract, ThePolicyFileValidatesByItselfAndTheCompiledContractCarriesIt) {
  Ran v = cli({"validate", (p.dir / "policies/browser_policy.json").string()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  write_file(p.dir / "bad/browser_policy.json",
             R"({"policy":"browser_policy","allowed_origins":["http://127.0.0.1:*/path"],"max_pages":0})");
  Ran bad = cli({"validate", "--format", "json", (p.dir / "bad/browser_policy.json").string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  std::set<std::string> ptrs;
  const json report = json::parse(bad.out);
  for (const auto& d : report["diagnostics"]) ptrs.insert(d["pointer"].get<std::string>());
  EXPECT_EQ(ptrs, (std::set<std::string>{"/allowed_origins/0", "/max_pages"})) << bad.out;

  // Any run's contract.json holds the operator's policy as read (here a tool run).
  auto r = p.run(p.contract({"true"}));
  ASSERT_FALSE(r.bundle.empty()) << r.ran.out << r.ran.err;
  json compiled = r.read("contract.json");
  EXPECT_EQ(compiled["policies"]["browser_policy"],
            json::parse(read_file(p.dir / "policies/browser_policy.json")));
  expect_valid("compiled_contract", compiled, "contract.json");
  fs::remove(p.dir / "policies/browser_policy.json");
  auto without = p.run(p.contract({"true"}));
  ASSERT_FALSE(without.bundle.empty()) << without.ran.out << without.ran.err;
  EXPECT_FALSE(without.read("contract.json")["policies"].contains("browser_policy"));
}

TEST_F(BrowserContract, IntakePreviewShowsTheBrowserSection) {
  json c = example();
  c["runtime_options"]["browser_tasks"]["tasks"].push_back(
      {{"id", "about"},
       {"script", json::array({{{"action", "navigate"}, {"url", "http://127.0.0.1:8000/about"}}})}});
  fs::path f = write_contract(c);
  Ran r = cli({"intake", "preview", f.string(), "--json"});
  const bool chromium = chromium_installed();
  EXPECT_EQ(r.exit_code, chromium ? 0 : 1) << r.out << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out << r.err;
  expect_valid("execution_plan_report", j, "intake preview");
  EXPECT_EQ(j["runner"], "browser");
  EXPECT_EQ(j["runtime_capability_summary"]["probes"]["chromium"], chromium ? "ok" : "missing");
  const json& b = j["browser"];
  ASSERT_EQ(b["tasks"].size(), 2u) << b.dump(2);
  EXPECT_EQ(b["tasks"][0], (json{{"id", "home"},
                                 {"url", "http://127.0.0.1:8000/"},
                                 {"steps", 3},
                                 {"template", "page_brief"},
                                 {"focus", "what the page lists"},
                                 {"timeout_ms", 30000}}));
  EXPECT_EQ(b["tasks"][1]["url"], nullptr);
  EXPECT_EQ(b["tasks"][1]["steps"], 1);
  EXPECT_EQ(b["tasks"][1]["template"], nullptr);
  EXPECT_EQ(b["policy"]["allowed_origins"], json::array({"http://127.0.0.1:8000"}));
  EXPECT_EQ(b["policy"]["network"], "deny");
  EXPECT_EQ(b["downloads"], "denied");
  EXPECT_EQ(b["file_urls"], "denied");
  EXPECT_EQ(b["profile"]["mode"], "ephemeral");
  EXPECT_EQ(b["budgets"]["max_pages"], 5);
  EXPECT_EQ(b["budgets"]["max_requests"], 200);
  EXPECT_EQ(b["budgets"]["wall_sec"], 60);
  std::set<std::string> evidence(b["evidence"].begin(), b["evidence"].end());
  EXPECT_TRUE(evidence.count("artifacts/browser/home/brief.json"));
  EXPECT_TRUE(evidence.count("artifacts/browser/about/network.jsonl"));
  EXPECT_FALSE(evidence.count("artifacts/browser/about/brief.json"));

  // Without its own origins the contract gets the operator's; a persistent profile shows its name and wait.
  c["runtime_options"]["browser_tasks"].erase("browser_policy");
  c["runtime_options"]["browser_tasks"]["profile"] = {{"mode", "persistent"}, {"name", "qa"}};
  Ran t = cli({"intake", "preview", write_contract(c).string()});
  EXPECT_EQ(t.exit_code, chromium ? 0 : 1) << t.out << t.err;
  EXPECT_NE(t.out.find("browser   2 task(s), profile persistent qa, headless"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("  task    home  http://127.0.0.1:8000/  3 step(s)  template page_brief"),
            std::string::npos)
      << t.out;
  EXPECT_NE(
      t.out.find("  origins [\"http://127.0.0.1:*\",\"http://localhost:*\"] (policies/browser_policy.json; "
                 "network deny)"),
      std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("  downloads denied, file URLs denied"), std::string::npos) << t.out;
}

}  // namespace
}  // namespace cp::test
