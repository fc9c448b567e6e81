// The tool runner plugin, driven in-process through the C ABI as the run engine will drive it.
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {

struct Driven {
  json result;
  std::vector<std::pair<std::string, json>> events;
};

// Runs `commands` through the tool runner in `ws`; `contract` and `policies` add to the runner input (the
// shipped allowlist is always there).
Driven drive(const std::vector<std::string>& commands, const std::filesystem::path& ws,
             const json& contract = json::object(), const json& policies = json::object()) {
  static cp::plugin::Registry reg = [] {
    cp::plugin::Registry r;
    r.load_directory(CP_PLUGIN_DIR);
    return r;
  }();
  const auto* info = reg.find("tool");
  EXPECT_NE(info, nullptr);
  auto* vt = static_cast<const cp_runner_vtable*>(info->vtable);
  Driven d;
  cp::plugin::CallContext ctx("tool");
  ctx.set_workspace(ws.string());
  ctx.set_event_sink([&](const std::string& t, const std::string& p) {
    d.events.emplace_back(t, json::parse(p));
    return true;
  });
  void* inst = nullptr;
  cp_error* err = nullptr;
  EXPECT_EQ(vt->create(ctx.raw(), "{}", &inst, &err), CP_OK);
  json allow =
      json::parse(cp::test::read_file(std::string(CP_SOURCE_DIR) + "/policies/command_allowlist.json"));
  json run{{"run_id", "r"},
           {"contract", {{"runtime_options", {{"runner", "tool"}, {"commands", commands}}}}},
           {"policies", {{"command_allowlist", allow}}}};
  run["contract"].update(contract);
  run["policies"].update(policies);
  void* handle = nullptr;
  EXPECT_EQ(vt->start(inst, ctx.raw(), run.dump().c_str(), &handle, &err), CP_OK);
  cp::plugin::SinkBuffer out(1 << 20);
  cp_status st;
  while ((st = vt->wait(inst, handle, 50, out.sink(), &err)) == CP_PENDING) {
  }
  EXPECT_EQ(st, CP_OK);
  vt->release(inst, handle);
  vt->destroy(inst);
  d.result = json::parse(out.data());
  return d;
}

}  // namespace

TEST(ToolRunner, RunsAllowedCommandsInTheWorkspace) {
  cp::test::TempDir ws;
  cp::test::write_file(ws / "f.txt", "Helo\n");
  auto d = drive({"sed -i s/Helo/Hello/ f.txt", "true"}, ws.path());
  EXPECT_EQ(d.result["status"], "completed") << d.result.dump();
  EXPECT_EQ(cp::test::read_file(ws / "f.txt"), "Hello\n");
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0].first, "COMMAND_EXECUTED");
  EXPECT_EQ(d.events[0].second["exit_code"], 0);
}

TEST(ToolRunner, CommandOffTheAllowlistIsDeniedAndNothingRuns) {
  cp::test::TempDir ws;
  auto d = drive({"touch created-by-denied-command"}, ws.path());
  EXPECT_EQ(d.result["status"], "denied");
  EXPECT_FALSE(std::filesystem::exists(ws / "created-by-denied-command"));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].first, "COMMAND_REJECTED");
}

TEST(ToolRunner, ShellTricksAndPathsToProgramsAreDenied) {
  cp::test::TempDir ws;
  EXPECT_EQ(drive({"true; touch x"}, ws.path()).result["status"], "denied");
  EXPECT_EQ(drive({"./true"}, ws.path()).result["status"], "denied");
  EXPECT_EQ(drive({"git push origin"}, ws.path()).result["status"], "denied");  // git-read's forms
  EXPECT_EQ(drive({"echo 'unterminated"}, ws.path()).result["status"], "denied");
  EXPECT_FALSE(std::filesystem::exists(ws / "x"));
}

TEST(ToolRunner, FailingCommandStopsTheRun) {
  cp::test::TempDir ws;
  auto d = drive({"false", "echo never"}, ws.path());
  EXPECT_EQ(d.result["status"], "failed");
  EXPECT_EQ(d.result["commands"].size(), 1u);
}

namespace {

// A worktree `ws` inside a scratch folder, with everything an escape would need to succeed if it were
// admitted: scripts and modules outside that create a canary, a Makefile elsewhere, a git repository.
struct EscapeScene {
  cp::test::TempDir root;
  std::filesystem::path ws = root / "ws";
  std::filesystem::path elsewhere = root / "elsewhere";
  std::filesystem::path canary = root / "canary";
  EscapeScene() {
    namespace fs = std::filesystem;
    fs::create_directories(ws / "scripts");
    fs::create_directories(ws / "tools");
    fs::create_directories(ws / "tests");
    fs::create_directories(elsewhere);
    cp::test::write_file(ws / "f.txt", "abc\n");
    cp::test::write_file(root / "secret", "SECRET\n");
    std::string touch = "touch " + canary.string();
    cp::test::write_file(root / "x.sh", touch + "\n");
    cp::test::write_file(root / "x.py", "open('" + canary.string() + "', 'w').close()\n");
    cp::test::write_file(elsewhere / "Makefile", "all:\n\t" + touch + "\n");
    cp::test::write_file(elsewhere / "test_canary.py", "open('" + canary.string() + "', 'w').close()\n");
    cp::test::Ran r = cp::test::sh(
        "git init -q && git add -A && git -c user.name=t -c user.email=t@localhost commit -qm init", ws);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
};

}  // namespace

TEST(ToolRunner, EveryAuditedEscapeFormIsDeclinedAndNothingLandsOutside) {
  EscapeScene s;
  const std::string c = s.canary.string(), e = s.elsewhere.string(), secret = (s.root / "secret").string();
  for (const std::string& line : std::vector<std::string>{
           "cp f.txt " + c,
           "cp f.txt ../canary",
           "mkdir " + c,
           "mkdir -p ../canary",
           "sed -i 'w " + c + "' f.txt",
           "sed -i -e 'w " + c + "' f.txt",
           "sed -i 's/a/b/w " + c + "' f.txt",
           "sed -i '1e touch " + c + "' f.txt",
           "sed -i 's|.*|touch " + c + "|e' f.txt",
           "sed -i 'W " + c + "' f.txt",
           "sed -i 'r " + secret + "' f.txt",
           "sed -i 'R " + secret + "' f.txt",
           "sed -i s/SECRET/leaked/ " + secret,
           "sed -i s/a/b/ f.txt --follow-symlinks",
           "sh scripts/../../x.sh",
           "python3 tools/../../x.py",
           "python3 -m unittest discover -s " + e,
           "python3 -m unittest discover -s ../elsewhere",
           "make -C " + e,
           "make -C ../elsewhere",
           "make --directory=" + e,
           "make -f " + e + "/Makefile",
           "make --eval=x:;touch\\ " + c,
           "git log --output=" + c,
           "git log --outp=" + c,
           "git diff --no-index " + secret + " f.txt",
           "git diff --no-index --output=" + c + " " + secret + " f.txt",
           "git -c core.pager=touch\\ " + c + " log",
       }) {
    auto d = drive({line}, s.ws);
    EXPECT_EQ(d.result["status"], "denied") << line << ": " << d.result.dump();
    ASSERT_EQ(d.events.size(), 1u) << line;
    EXPECT_EQ(d.events[0].first, "COMMAND_REJECTED") << line;
    EXPECT_FALSE(std::filesystem::exists(s.canary)) << line << " reached outside the worktree";
  }
  EXPECT_EQ(cp::test::read_file(s.ws / "f.txt"), "abc\n");  // nothing read in from outside either
  EXPECT_EQ(cp::test::read_file(s.root / "secret"), "SECRET\n");
}

TEST(ToolRunner, EscapeScenesWouldWorkIfAdmitted) {
  // The canaries above are meaningful: the same programs, run directly, do reach outside.
  EscapeScene s;
  cp::test::Ran r = cp::test::sh("sh scripts/../../x.sh", s.ws);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(s.canary));
  std::filesystem::remove(s.canary);
  r = cp::test::sh("make -s -C ../elsewhere", s.ws);
  EXPECT_TRUE(std::filesystem::exists(s.canary)) << r.err;
  std::filesystem::remove(s.canary);
  r = cp::test::sh("sed -i 's/a/b/w " + s.canary.string() + "' f.txt", s.ws);
  EXPECT_TRUE(std::filesystem::exists(s.canary)) << r.err;
}

TEST(ToolRunner, TightenedEntriesStillRunTheEverydayForms) {
  EscapeScene s;
  auto d = drive({"sed -i -e s/abc/xyz/ f.txt", "mkdir -p sub/dir", "cp f.txt sub/dir/g.txt",
                  "git status --short", "git diff --stat", "git log --oneline -1"},
                 s.ws);
  EXPECT_EQ(d.result["status"], "completed") << d.result.dump();
  EXPECT_EQ(cp::test::read_file(s.ws / "sub/dir/g.txt"), "xyz\n");
}

TEST(ToolRunner, ForbiddenActionIsDeclinedBeforeItRunsEvenWhenTheAllowlistAdmitsIt) {
  EscapeScene s;
  json policies{
      {"forbidden_actions",
       {{"actions", {{{"id", "no-canary"}, {"pattern", "canary"}, {"reason", "tests of the pre-check"}}}}}}};
  auto d = drive({"true", "mkdir canary"}, s.ws, {{"forbidden_actions", {"no-canary"}}}, policies);
  EXPECT_EQ(d.result["status"], "denied") << d.result.dump();
  EXPECT_FALSE(std::filesystem::exists(s.ws / "canary"));
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[1].first, "COMMAND_REJECTED");
  EXPECT_NE(d.events[1].second["reason"].get<std::string>().find("forbidden action 'no-canary'"),
            std::string::npos);
  // Quotes do not hide a word from the pre-check.
  EXPECT_EQ(
      drive({"mkdir 'can'ary"}, s.ws, {{"forbidden_actions", {"no-canary"}}}, policies).result["status"],
      "denied");
  // A contract naming an undefined action is an error, not a run without the check.
  auto u = drive({"true"}, s.ws, {{"forbidden_actions", {"undefined"}}}, policies);
  EXPECT_EQ(u.result["status"], "error") << u.result.dump();
}

TEST(ToolRunner, HugeArgumentIsJudgedOrRefusedWithoutCrashing) {
  EscapeScene s;
  std::string big(200 * 1024, 'a');
  auto d = drive({"sed -i s/" + big + "/x/ f.txt"}, s.ws);
  EXPECT_EQ(d.result["status"], "denied");
  EXPECT_NE(d.result["reason"].get<std::string>().find("longer than"), std::string::npos);
  EXPECT_LT(d.result["reason"].get<std::string>().size(), 400u);
  std::string nested;
  for (int i = 0; i < 30000; ++i) nested += "((";
  EXPECT_EQ(drive({"echo " + nested}, s.ws).result["status"], "completed");
}
