// The shipped gate plugins, called in-process through the real loader with real files.
#include "gates/verdict.hpp"
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const cp::plugin::Registry& registry() {
  static cp::plugin::Registry r = [] {
    cp::plugin::Registry x;
    x.load_directory(CP_PLUGIN_DIR);
    return x;
  }();
  return r;
}

json evaluate(const std::string& id, const json& input) {
  const auto* info = registry().find(id);
  EXPECT_NE(info, nullptr) << id;
  if (!info) return {};
  std::string err;
  auto inst = cp::plugin::Instance::create(*info, err);
  EXPECT_TRUE(inst) << err;
  cp::plugin::CallContext ctx(id);
  return cp::gates::verdict_from(inst->evaluate(ctx, input.dump()));
}

bool mentions(const json& verdict, const std::string& needle) {
  return verdict.dump().find(needle) != std::string::npos;
}

struct Workspace {
  cp::test::TempDir dir;
  fs::path ws() const { return dir / "ws"; }
  fs::path bundle() const { return dir / "bundle"; }
  Workspace() {
    fs::create_directories(ws() / "src");
    fs::create_directories(bundle());
  }
  json input(json contract, json changes = json::array(), json commands = json::array()) const {
    return {{"run_id", "r1"},       {"workspace", ws().string()}, {"bundle_dir", bundle().string()},
            {"contract", contract}, {"changes", changes},         {"commands", commands}};
  }
};

}  // namespace

TEST(RequiredOutputsGate, PassesWhenPresentFailsWhenMissingOrEmpty) {
  Workspace w;
  cp::test::write_file(w.ws() / "src/out.txt", "data");
  cp::test::write_file(w.ws() / "src/empty.txt", "");
  json c{{"required_outputs", {{{"name", "out"}, {"path", "src/out.txt"}}}}};
  EXPECT_EQ(evaluate("required_outputs", w.input(c))["verdict"], "pass");

  c["required_outputs"].push_back({{"name", "gone"}, {"path", "src/missing.txt"}});
  c["required_outputs"].push_back({{"name", "blank"}, {"path", "src/empty.txt"}, {"non_empty", true}});
  auto v = evaluate("required_outputs", w.input(c));
  EXPECT_EQ(v["verdict"], "fail");
  EXPECT_TRUE(mentions(v, "src/missing.txt"));
  EXPECT_TRUE(mentions(v, "empty, but the contract requires content"));
}

TEST(RequiredOutputsGate, SymlinkOrDotDotEscapeIsNotAnOutput) {
  Workspace w;
  cp::test::write_file(w.dir / "outside.txt", "secret");
  fs::create_symlink(w.dir / "outside.txt", w.ws() / "src/link.txt");
  json c{{"required_outputs",
          {{{"name", "l"}, {"path", "src/link.txt"}}, {{"name", "d"}, {"path", "../outside.txt"}}}}};
  auto v = evaluate("required_outputs", w.input(c));
  EXPECT_EQ(v["verdict"], "fail");
  EXPECT_EQ(v["diagnostics"].size(), 2u);
  EXPECT_TRUE(mentions(v, "resolves outside"));
}

TEST(DiffScopeGate, InsideAllowedPathsPasses) {
  Workspace w;
  cp::test::write_file(w.ws() / "src/a.c", "x");
  json c{{"allowed_paths", {"src/", "docs/*.md"}}};
  json ch = {{{"path", "src/a.c"}, {"status", "modified"}},
             {{"path", "docs/readme.md"}, {"status", "added"}},
             {{"path", "src/old.c"}, {"status", "deleted"}}};
  auto v = evaluate("diff_scope", w.input(c, ch));
  EXPECT_EQ(v["verdict"], "pass") << v.dump();
}

TEST(DiffScopeGate, OutsidePathsDotDotCaseAndRenamesAreViolations) {
  Workspace w;
  json c{{"allowed_paths", {"src/"}}};
  json ch = {{{"path", "README.md"}, {"status", "modified"}},
             {{"path", "src/../etc/x"}, {"status", "added"}},
             {{"path", "../escape.txt"}, {"status", "added"}},
             {{"path", "SRC/a.c"}, {"status", "added"}},
             {{"path", "src/moved.c"}, {"old_path", "lib/moved.c"}, {"status", "renamed"}},
             {{"path", "srcfoo/a.c"}, {"status", "added"}}};
  auto v = evaluate("diff_scope", w.input(c, ch));
  EXPECT_EQ(v["verdict"], "fail");
  std::set<std::string> flagged;
  for (const auto& d : v["diagnostics"]) flagged.insert(d["path"].get<std::string>());
  for (const char* p : {"README.md", "src/../etc/x", "../escape.txt", "SRC/a.c", "lib/moved.c", "srcfoo/a.c"})
    EXPECT_TRUE(flagged.count(p)) << p << " not flagged: " << v.dump();
  EXPECT_FALSE(flagged.count("src/moved.c"));
}

TEST(DiffScopeGate, SymlinkPointingOutsideIsAViolation) {
  Workspace w;
  fs::create_symlink("/etc/passwd", w.ws() / "src/passwd");
  fs::create_symlink("../../outside", w.ws() / "src/up");
  cp::test::write_file(w.ws() / "notallowed/secret.txt", "s");
  fs::create_symlink("../notallowed/secret.txt", w.ws() / "src/inside_link");
  json c{{"allowed_paths", {"src/"}}};
  json ch = {{{"path", "src/passwd"}, {"status", "added"}},
             {{"path", "src/up"}, {"status", "added"}},
             {{"path", "src/inside_link"}, {"status", "added"}}};
  auto v = evaluate("diff_scope", w.input(c, ch));
  EXPECT_EQ(v["verdict"], "fail");
  EXPECT_EQ(v["diagnostics"].size(), 3u) << v.dump();
  EXPECT_TRUE(mentions(v, "symlink points outside the worktree"));
  EXPECT_TRUE(mentions(v, "symlink points outside allowed_paths"));
}

TEST(DiffScopeGate, SymlinkedFolderCannotLaunderAPath) {
  Workspace w;
  fs::create_directories(w.ws() / "private");
  fs::create_directory_symlink("../private", w.ws() / "src/door");
  cp::test::write_file(w.ws() / "private/x.txt", "x");
  json c{{"allowed_paths", {"src/"}}};
  auto v = evaluate("diff_scope", w.input(c, {{{"path", "src/door/x.txt"}, {"status", "added"}}}));
  EXPECT_EQ(v["verdict"], "fail") << v.dump();
  EXPECT_TRUE(mentions(v, "private/x.txt"));
}

TEST(DiffScopeGate, MissingChangeListIsAnErrorNotAPass) {
  Workspace w;
  json in = w.input({{"allowed_paths", {"src/"}}});
  in.erase("changes");
  auto v = evaluate("diff_scope", in);
  EXPECT_EQ(v["verdict"], "error");
}

TEST(AcceptanceTestsGate, PassFailTimeoutAndLogs) {
  Workspace w;
  json c{{"acceptance_tests",
          {{{"name", "ok"}, {"cmd", "echo fine"}},
           {{"name", "bad"}, {"cmd", "echo boom >&2; exit 4"}, {"must_pass", true}},
           {{"name", "slow"}, {"cmd", "sleep 30"}, {"timeout_sec", 1}},
           {{"name", "optional"}, {"cmd", "false"}, {"must_pass", false}}}}};
  auto v = evaluate("acceptance_tests", w.input(c));
  EXPECT_EQ(v["verdict"], "fail");
  EXPECT_TRUE(mentions(v, "2 of 4 required test(s) failed"));
  EXPECT_TRUE(mentions(v, "boom"));
  EXPECT_TRUE(mentions(v, "timed out after 1 s"));
  EXPECT_EQ(cp::test::read_file(w.bundle() / "artifacts/tests/ok/stdout.log"), "fine\n");
  EXPECT_EQ(cp::test::read_file(w.bundle() / "artifacts/tests/bad/stderr.log"), "boom\n");
}

TEST(AcceptanceTestsGate, RunsInTheWorkspaceAndOptionalFailureOnlyWarns) {
  Workspace w;
  cp::test::write_file(w.ws() / "marker", "m");
  json c{{"acceptance_tests",
          {{{"name", "here"}, {"cmd", "test -f marker"}},
           {{"name", "opt"}, {"cmd", "false"}, {"must_pass", false}}}}};
  EXPECT_EQ(evaluate("acceptance_tests", w.input(c))["verdict"], "warn");
}

TEST(AcceptanceTestsGate, NoTestsIsNotProof) {
  Workspace w;
  auto v = evaluate("acceptance_tests", w.input(json{{"acceptance_tests", json::array()}}));
  EXPECT_EQ(v["verdict"], "fail");
}

TEST(ForbiddenActionsGate, MatchFailsUnknownIdErrors) {
  Workspace w;
  json policies{
      {"forbidden_actions",
       {{"actions", {{{"id", "git-push"}, {"pattern", "\\bgit\\s+push\\b"}, {"reason", "no publishing"}}}}}}};
  json cmds = {{{"command", "make test"}}, {{"command", "git push origin main"}}};
  json in = w.input({{"forbidden_actions", {"git-push"}}}, json::array(), cmds);
  in["policies"] = policies;
  auto v = evaluate("forbidden_actions", in);
  EXPECT_EQ(v["verdict"], "fail");
  EXPECT_TRUE(mentions(v, "git push origin main"));

  in["commands"] = json::array({{{"command", "make test"}}});
  EXPECT_EQ(evaluate("forbidden_actions", in)["verdict"], "pass");

  in["contract"]["forbidden_actions"] = {"undefined-action"};
  EXPECT_EQ(evaluate("forbidden_actions", in)["verdict"], "error");
}

TEST(ForbiddenActionsGate, JudgesTheArgvARunnerRecordedAndPatternsAreRe2) {
  Workspace w;
  json policies{
      {"forbidden_actions",
       {{"actions", {{{"id", "git-push"}, {"pattern", "\\bgit\\s+push\\b"}, {"reason", "no publishing"}}}}}}};
  json cmds = {{{"command", "git 'push' origin"}, {"argv", {"git", "push", "origin"}}}};
  json in = w.input({{"forbidden_actions", {"git-push"}}}, json::array(), cmds);
  in["policies"] = policies;
  EXPECT_EQ(evaluate("forbidden_actions", in)["verdict"], "fail");
  // A long command is judged (linear time), not a crash.
  in["commands"] = json::array({{{"command", std::string(1 << 20, '(') + " git push"}}});
  EXPECT_EQ(evaluate("forbidden_actions", in)["verdict"], "fail");
  in["policies"]["forbidden_actions"]["actions"][0]["pattern"] = "(push)\\1";  // backreference: not RE2
  auto v = evaluate("forbidden_actions", in);
  EXPECT_EQ(v["verdict"], "error");
  EXPECT_TRUE(mentions(v, "RE2")) << v.dump();
}

TEST(AcceptanceTestsGate, ForbiddenTestIsNotRunAndFailsTheGate) {
  Workspace w;
  fs::path canary = w.dir / "canary";
  json policies{{"forbidden_actions",
                 {{"actions",
                   {{{"id", "sudo"}, {"pattern", "(^|[\\s;&|])sudo\\s"}, {"reason", "never escalate"}},
                    {{"id", "git-push"}, {"pattern", "\\bgit\\s+push\\b"}, {"reason", "no publishing"}}}}}}};
  json c{{"forbidden_actions", {"sudo", "git-push"}},
         {"acceptance_tests",
          {{{"name", "ok"}, {"cmd", "true"}},
           {{"name", "escalates"}, {"cmd", "touch " + canary.string() + "; sudo true"}, {"must_pass", false}},
           {{"name", "quoted"}, {"cmd", "touch " + canary.string() + " && g\"it\" push"}}}}};
  json in = w.input(c);
  in["policies"] = policies;
  auto v = evaluate("acceptance_tests", in);
  EXPECT_EQ(v["verdict"], "fail") << v.dump();
  EXPECT_FALSE(fs::exists(canary)) << "a forbidden test was run";
  EXPECT_TRUE(mentions(v, "test 'escalates'"));
  EXPECT_TRUE(mentions(v, "forbidden action 'sudo'"));
  EXPECT_TRUE(mentions(v, "forbidden action 'git-push'"));
  EXPECT_TRUE(mentions(v, "2 test(s) not run"));
  EXPECT_EQ(v["details"]["tests"][0]["passed"], true);
  EXPECT_EQ(v["details"]["tests"][1]["passed"], false);

  in["contract"]["forbidden_actions"] = {"undefined-action"};
  EXPECT_EQ(evaluate("acceptance_tests", in)["verdict"], "error");
}
