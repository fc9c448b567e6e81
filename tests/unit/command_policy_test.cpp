// The policy checks of plugins/common/ judged directly: the shipped command allowlist (what it admits, every
// escape form it must refuse and why), the sed script check, the forbidden-actions matcher, and the glob
// matcher of allowed_paths. No process is started here; tool_runner_test.cpp runs the same commands.
#include "../../plugins/common/command_policy.hpp"
#include "../../plugins/common/forbidden_match.hpp"
#include "../../plugins/common/path_match.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <random>

using cp::plugins::CommandAllowlist;
using nlohmann::json;

namespace {

const CommandAllowlist& shipped() {
  static const CommandAllowlist allow(
      json::parse(cp::test::read_file(std::string(CP_SOURCE_DIR) + "/policies/command_allowlist.json")));
  return allow;
}

// The id of the admitting entry, or "DENIED: <reason>".
std::string judge(const std::string& line, const CommandAllowlist& allow = shipped()) {
  std::vector<std::string> argv;
  std::string denial;
  const auto* hit = allow.admit(line, argv, denial);
  return hit ? hit->id : "DENIED: " + denial;
}

bool denied(const std::string& line) {
  return judge(line).rfind("DENIED", 0) == 0;
}

}  // namespace

TEST(CommandPolicy, ShippedAllowlistAdmitsTheEverydayForms) {
  for (const char* ok : {"true",
                         "echo hello world",
                         "sleep 1",
                         "sleep 0.5",
                         "sed -i s/Helo/Hello/ src/greeting.sh",
                         "sed -i -e s/a/b/g f.txt g.txt",
                         "sed -i 's|a/b|c|2' f.txt",
                         "sed -i y/abc/xyz/ f.txt",
                         "sed -i 's|^# x$|&\\ndesign: y|' docs/PLAN.md",
                         "sed -i 's/a\\/b/c/I' f.txt",
                         "cp README.md docs/PLAN.md",
                         "cp -r src dst",
                         "mkdir -p docs",
                         "mkdir a b/c",
                         "sh scripts/test.sh",
                         "sh scripts/ci/lint.sh --fix src",
                         "python3 -m pytest -q tests",
                         "python3 -m unittest discover -s tests -t .",
                         "python3 tools/gen.py out.txt",
                         "make",
                         "make test",
                         "make -C sub -j4 all",
                         "make -f build.mk --jobs=2 check",
                         "git status",
                         "git status --short",
                         "git diff HEAD~1 --stat",
                         "git log --oneline -3",
                         "git show HEAD:src/greeting.sh",
                         "git diff main..HEAD -- src",
                         "git diff --no-ext-diff"})
    EXPECT_FALSE(denied(ok)) << ok << ": " << judge(ok);
}

TEST(CommandPolicy, EveryAuditedEscapeFormIsRefusedWithItsReason) {
  struct Case {
    std::string line, reason;
  };
  for (const Case& c : std::vector<Case>{
           {"cp f.txt /tmp/canary", "absolute path"},
           {"cp f.txt ../canary", "'..' component"},
           {"cp -t /tmp f.txt", "absolute path"},
           {"cp -t/tmp f.txt", "short option word"},
           {"cp -t.. f.txt", "short option word"},
           {"cp --target-directory=/tmp f.txt", "absolute path"},
           {"cp ~/.ssh/id_rsa x", "home folder"},
           {"mkdir /tmp/canary", "absolute path"},
           {"mkdir -p src/../../canary", "'..' component"},
           {"sed -i 'w /tmp/canary' f.txt", "not a single s/// or y/// command"},
           {"sed -i -e 'w /tmp/canary' f.txt", "not a single s/// or y/// command"},
           {"sed -i 's/a/b/w /tmp/canary' f.txt", "flag or command 'w'"},
           {"sed -i 's/a/b/;w /tmp/canary' f.txt", "flag or command ';'"},
           {"sed -i 's/a/touch x/e' f.txt", "flag or command 'e'"},
           {"sed -i '1e touch /tmp/canary' f.txt", "not a single s/// or y/// command"},
           {"sed -i 'W /tmp/canary' f.txt", "not a single s/// or y/// command"},
           {"sed -i 'r /etc/passwd' f.txt", "not a single s/// or y/// command"},
           {"sed -i 'R /etc/passwd' f.txt", "not a single s/// or y/// command"},
           {"sed -i '$a text' f.txt", "not a single s/// or y/// command"},
           {"sed -i 's/a/b/\nw /tmp/canary' f.txt", "newline"},
           {"sed -i y/a/b/w f.txt", "y/// takes no flags"},
           {"sed -i s/a/b/ f.txt --follow-symlinks", "fit none of the allowed forms"},
           {"sed -i s/a/b/ /etc/hosts", "absolute path"},
           {"sed -i s/a/b/ ../f.txt", "'..' component"},
           {"sed -i -e s/a/b/ -e 'w /tmp/x' f.txt", "fit none of the allowed forms"},
           {"sed -n 'w /tmp/canary' f.txt", "fit none of the allowed forms"},
           {"sed -i.bak s/a/b/ f.txt", "fit none of the allowed forms"},
           {"sh scripts/../../x.sh", "'..' component"},
           {"sh /tmp/x.sh", "fit none of the allowed forms"},
           {"sh -c 'touch /tmp/canary'", "fit none of the allowed forms"},
           {"sh scripts/x.sh /etc/passwd", "absolute path"},
           {"python3 tools/../../x.py", "'..' component"},
           {"python3 -c 'print(1)'", "fit none of the allowed forms"},
           {"python3 -m unittest discover -s /elsewhere", "absolute path"},
           {"python3 -m unittest discover -t ../x -s tests", "'..' component"},
           {"python3 -m unittest discover --start-directory=/elsewhere", "absolute path"},
           {"python3 -m pytest --rootdir=/elsewhere", "not among the allowed options"},
           {"python3 -m pytest -o cache_dir=/elsewhere", "not among the allowed options"},
           {"make -C /elsewhere", "absolute path"},
           {"make -C ../elsewhere", "'..' component"},
           {"make -C/elsewhere", "not among the allowed options"},
           {"make --directory=/elsewhere", "absolute path"},
           {"make --dir=/elsewhere", "not among the allowed options"},
           {"make -f /elsewhere/Makefile", "absolute path"},
           {"make --eval=all:;touch /tmp/canary", "not among the allowed options"},
           {"make 'X:=$(shell touch /tmp/canary)'", "not a plain word"},
           {"make SHELL=/tmp/evil", "not a plain word"},
           {"git log --output=/elsewhere/canary", "option '--output=/elsewhere/canary' is refused"},
           {"git log --outp=/elsewhere/canary", "is refused (--output)"},
           {"git diff --output /elsewhere/canary", "is refused (--output)"},
           {"git diff --no-index /etc/passwd f.txt", "is refused (--no-index)"},
           {"git diff --no-i a b", "is refused (--no-index)"},
           {"git diff --ext-diff", "is refused (--ext-diff)"},
           {"git show -o x", "is refused (-o)"},
           {"git -c core.pager=evil log", "fit none of the allowed forms"},
           {"git -C /elsewhere status", "fit none of the allowed forms"},
           {"git push origin main", "fit none of the allowed forms"},
           {"git log -- ../x", "'..' component"},
           {"git show HEAD:../../etc/passwd", "'..' component"},
           {"sleep 1 2", "fit none of the allowed forms"},
           {"sleep 1e3", "not a number"},
           {"./true", "program given as a path"},
           {"touch x", "not on the command allowlist"},
           {"echo 'unterminated", "cannot split"},
       }) {
    std::string v = judge(c.line);
    EXPECT_EQ(v.rfind("DENIED", 0), 0u) << c.line << " was admitted by " << v;
    EXPECT_NE(v.find(c.reason), std::string::npos) << c.line << ": " << v;
  }
}

// pytest runs --rootdir, ini values and the like through os.path.expanduser and os.path.expandvars, so
// '~' and '$VAR' name places outside the worktree even though no shell ever sees them.
TEST(CommandPolicy, PytestAndUnittestTakeOnlyListedOptionsAndNoExpandablePaths) {
  struct Case {
    std::string line, reason;
  };
  for (const Case& c : std::vector<Case>{
           {"python3 -m pytest -o cache_dir=$HOME/cp-pwn", "option '-o' is not among the allowed options"},
           {"python3 -m pytest --rootdir=$HOME", "option '--rootdir=$HOME' is not among the allowed options"},
           {"python3 -m pytest -ocache_dir=~", "option '-ocache_dir=~' is not among the allowed options"},
           {"python3 -m pytest -o cache_dir=$TMPDIR", "option '-o' is not among the allowed options"},
           {"python3 -m pytest --override-ini=cache_dir=x", "not among the allowed options"},
           {"python3 -m pytest -c pytest.ini", "not among the allowed options"},
           {"python3 -m pytest -p evil", "not among the allowed options"},
           {"python3 -m pytest -p no:cacheprovider", "not among the allowed options"},
           {"python3 -m pytest --basetemp=x", "not among the allowed options"},
           {"python3 -m pytest --confcutdir=x", "not among the allowed options"},
           {"python3 -m pytest --import-mode=append", "not among the allowed options"},
           {"python3 -m pytest --pdbcls=os:system", "not among the allowed options"},
           {"python3 -m pytest --rootd=x", "not among the allowed options"},
           {"python3 -m pytest -qo cache_dir=x", "not among the allowed options"},
           {"python3 -m pytest ~/tests", "path relative to a home folder"},
           {"python3 -m pytest $HOME/tests", "'$'"},
           {"python3 -m pytest tests/${HOME}", "'$'"},
           {"python3 -m pytest --junitxml=$HOME/r.xml", "'$'"},
           {"python3 -m pytest --junitxml=~/r.xml", "path relative to a home folder"},
           {"python3 -m pytest --junitxml=/tmp/r.xml", "absolute path"},
           {"python3 -m pytest -k x -- ~", "path relative to a home folder"},
           {"python3 -m unittest discover -s $HOME", "'$'"},
           {"python3 -m unittest discover -s ~", "path relative to a home folder"},
           {"python3 -m unittest discover --start-directory=~", "path relative to a home folder"},
           {"python3 -m unittest discover -t $TMPDIR/x", "'$'"},
           {"python3 -m unittest discover -s tests --foo", "not among the allowed options"},
           {"python3 tools/gen.py $HOME", "'$'"},
           {"python3 tools/gen.py out=~", "path relative to a home folder"},
       }) {
    std::string v = judge(c.line);
    EXPECT_EQ(v.rfind("DENIED", 0), 0u) << c.line << " was admitted by " << v;
    EXPECT_NE(v.find(c.reason), std::string::npos) << c.line << ": " << v;
  }
  for (const char* ok :
       {"python3 -m pytest", "python3 -m pytest -q tests/", "python3 -m pytest -x -v tests/test_a.py",
        "python3 -m pytest -k 'not slow and fast' -m unit tests",
        "python3 -m pytest --tb=short --maxfail=1 -rA tests/test_a.py::test_b[x-1]",
        "python3 -m pytest --junitxml=build/report.xml", "python3 -m unittest",
        "python3 -m unittest discover -s tests",
        "python3 -m unittest discover -s tests -t . -p 'test_*.py' -v", "python3 -m unittest -k slow",
        "python3 tools/gen.py out.txt"})
    EXPECT_FALSE(denied(ok)) << ok << ": " << judge(ok);
  EXPECT_EQ(judge("python3 -m pytest -q tests"), "python-pytest");
  EXPECT_EQ(judge("python3 -m unittest discover -s tests"), "python-unittest");
  EXPECT_EQ(judge("python3 tools/gen.py"), "python-scripts");
}

// '~' only means a home folder at the start of a word or of a part after '=' or ':' (expanduser reads no
// other), so git's HEAD~1 stays admitted; a short option word, whose glued value could start anywhere, may
// hold neither '~' nor '$'.
TEST(CommandPolicy, HomeAndVariableFormsAreRefusedInEveryPieceThatMayNameAFile) {
  CommandAllowlist any(json::parse(R"({"entries":[{"id":"x","program":"x","args":{"paths":"relative"}}]})"));
  for (const char* bad :
       {"x ~", "x ~/a", "x ~root/a", "x a=~/b", "x a:~/b", "x --o=~", "x --o=a:~/b", "x $HOME", "x a/$X/b",
        "x --o=${X}", "x a=$X", "x -o~", "x -oa=~", "x -a$X", "x -- ~"})
    EXPECT_EQ(judge(bad, any).rfind("DENIED", 0), 0u) << bad;
  for (const char* ok : {"x HEAD~1", "x HEAD~1:a/b", "x a/~b", "x -v", "x --o=a:b", "x a=b"})
    EXPECT_EQ(judge(ok, any), "x") << ok;
}

// The python3 test entries set PYTHONSAFEPATH=1 for the started program, over whatever cp-host's
// environment holds; an entry without "env" inherits cp-host's environment unchanged.
TEST(CommandPolicy, EntryEnvironmentIsSetForTheStartedProgram) {
  std::vector<std::string> argv;
  std::string denial;
  const auto* hit = shipped().admit("python3 -m pytest -q tests", argv, denial);
  ASSERT_NE(hit, nullptr) << denial;
  ::setenv("PYTHONSAFEPATH", "", 1);
  auto env = cp::plugins::spawn_environment(*hit);
  ::unsetenv("PYTHONSAFEPATH");
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(std::count(env->begin(), env->end(), "PYTHONSAFEPATH=1"), 1);
  EXPECT_EQ(std::count(env->begin(), env->end(), "PYTHONSAFEPATH="), 0);
  EXPECT_GE(std::count_if(env->begin(), env->end(),
                          [](const std::string& kv) { return kv.rfind("PATH=", 0) == 0; }),
            1);
  hit = shipped().admit("python3 -m unittest discover -s tests", argv, denial);
  ASSERT_NE(hit, nullptr) << denial;
  EXPECT_TRUE(cp::plugins::spawn_environment(*hit).has_value());
  hit = shipped().admit("python3 tools/gen.py", argv, denial);
  ASSERT_NE(hit, nullptr) << denial;
  EXPECT_FALSE(cp::plugins::spawn_environment(*hit).has_value());
  auto bad = [](const char* env) {
    return json::parse(std::string(R"({"entries":[{"id":"x","program":"x","env":)") + env + "}]}");
  };
  EXPECT_THROW(CommandAllowlist(bad(R"(["A=1"])")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"lower":"1"})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"A=B":"1"})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"1A":"1"})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"A":1})")), std::invalid_argument);
}

TEST(CommandPolicy, HugeArgumentsAreJudgedInLinearTimeOrRefusedBySize) {
  std::string big(100 * 1024, 'a');
  EXPECT_EQ(judge("sed -i s/" + big + "/b/ f.txt"), "sed-inplace");
  EXPECT_EQ(judge("git status " + big), "git-read");
  EXPECT_EQ(judge("echo " + big), "echo");
  std::string nested;  // what sent std::regex into deep recursion
  for (int i = 0; i < 20000; ++i) nested += "((";
  EXPECT_EQ(judge("echo " + nested), "echo");
  EXPECT_TRUE(denied("git log --output=/x" + big));
  std::string v = judge("echo " + std::string(200 * 1024, 'x'));
  EXPECT_NE(v.find("longer than the 131072"), std::string::npos) << v.substr(0, 200);
  EXPECT_NE(judge(std::string("echo a\0b", 8)).find("NUL"), std::string::npos);
}

TEST(CommandPolicy, LegacyArgsRegexIsRe2WithAnInputCap) {
  CommandAllowlist allow(json::parse(R"({"policy":"command_allowlist","entries":[
      {"id":"echo-a","program":"echo","args_regex":"^(a|aa)*$"}]})"));
  EXPECT_EQ(judge("echo " + std::string(60 * 1024, 'a'), allow), "echo-a");  // exponential for backtracking
  EXPECT_TRUE(judge("echo " + std::string(60 * 1024, 'a') + "b", allow).find("do not match") !=
              std::string::npos);
  EXPECT_NE(judge("echo " + std::string(70 * 1024, 'a'), allow).find("longer than 65536"), std::string::npos);
  EXPECT_THROW(
      CommandAllowlist(json::parse(
          R"({"entries":[{"id":"x","program":"echo","args_regex":"(a)\\1"}]})")),  // no backreferences
      std::invalid_argument);
}

TEST(CommandPolicy, RulesTheCheckerCannotUnderstandAreErrorsNotOpenDoors) {
  auto bad = [](const char* args) {
    return json::parse(std::string(R"({"entries":[{"id":"x","program":"x","args":)") + args + "}]}");
  };
  EXPECT_THROW(CommandAllowlist(bad(R"({"forms":[["<pathx>"]]})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"forms":[["...","a"]]})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"paths":"absolute"})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"max_args":-1})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"deny_options":["output"]})")), std::invalid_argument);
  EXPECT_THROW(CommandAllowlist(bad(R"({"unknown":1})")), std::invalid_argument);
  CommandAllowlist few(bad(R"({"max_args":2})"));
  EXPECT_EQ(judge("x a b", few), "x");
  EXPECT_NE(judge("x a b c", few).find("3 arguments, at most 2"), std::string::npos);
}

TEST(CommandPolicy, SedCheckAcceptsOnlyOnePlainSubstitution) {
  std::string why;
  for (const char* ok : {"s/a/b/", "s/a/b/g", "s/a/b/gpI2", "s|a/b|c|", "s/a\\/b/c\\/d/", "y/ab/cd/"})
    EXPECT_TRUE(cp::plugins::plain_sed_edit(ok, why)) << ok << ": " << why;
  for (const char* bad :
       {"s/a/b", "s/a/b/w x", "s/a/b/e", "s/a/b/m", "s/a/b/;p", "s/a/b/ ", "1s/a/b/", "/x/d", "sgagbg",
        "s\\a\\b\\", "s/a/b\\", "p", "", "y/a/b/g", "s/a/b/}", "s/[/]x/y/"})
    EXPECT_FALSE(cp::plugins::plain_sed_edit(bad, why)) << bad;
}

TEST(ForbiddenMatch, RulesComeFromTheContractAndMatchTextOrWords) {
  json policies{{"forbidden_actions",
                 {{"actions",
                   {{{"id", "git-push"}, {"pattern", "\\bgit\\s+push\\b"}, {"reason", "never publish"}},
                    {{"id", "sudo"}, {"pattern", "(^|[\\s;&|])sudo\\s"}, {"reason", "no"}}}}}}};
  auto f = cp::plugins::ForbiddenActions::for_run(json{{"forbidden_actions", {"git-push"}}}, policies);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f.first_match("git push origin main", nullptr), nullptr);
  EXPECT_NE(f.first_match("g'i't push", nullptr), nullptr);  // the words, quotes removed
  std::vector<std::string> argv{"git", "push"};
  EXPECT_NE(f.first_match("x", &argv), nullptr);
  EXPECT_EQ(f.first_match("git pushed", nullptr), nullptr);
  EXPECT_EQ(f.first_match("sudo ls", nullptr), nullptr);  // not named by the contract
  EXPECT_EQ(cp::plugins::ForbiddenActions::denial(*f.first_match("git push", nullptr)),
            "matches forbidden action 'git-push' (never publish)");
  // A 1 MiB command is judged, in linear time.
  EXPECT_NE(f.first_match(std::string(1 << 20, ' ') + "git push", nullptr), nullptr);
  EXPECT_THROW(cp::plugins::ForbiddenActions::for_run(json{{"forbidden_actions", {"nope"}}}, policies),
               std::invalid_argument);
  json bad = policies;
  bad["forbidden_actions"]["actions"][0]["pattern"] = "(?=push)";  // lookahead: not RE2
  EXPECT_THROW(cp::plugins::ForbiddenActions::for_run(json{{"forbidden_actions", {"git-push"}}}, bad),
               std::invalid_argument);
}

TEST(ForbiddenMatch, RunnersCheckForbiddenActionsBeforeTheAllowlist) {
  json policies{{"forbidden_actions",
                 {{"actions", {{{"id", "git-push"}, {"pattern", "\\bgit\\s+push\\b"}, {"reason", "r"}}}}}}};
  auto f = cp::plugins::ForbiddenActions::for_run(json{{"forbidden_actions", {"git-push"}}}, policies);
  CommandAllowlist any_git(json::parse(R"({"entries":[{"id":"git-any","program":"git"}]})"));
  std::vector<std::string> argv;
  std::string denial;
  EXPECT_EQ(cp::plugins::admit_command(any_git, f, "git \"push\" origin", argv, denial), nullptr);
  EXPECT_NE(denial.find("forbidden action 'git-push'"), std::string::npos) << denial;
  EXPECT_NE(cp::plugins::admit_command(any_git, f, "git status", argv, denial), nullptr);
}

namespace {

// The recursive matcher path_match.hpp used to have: the reference for the semantics.
bool reference_glob(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.substr(0, 2) == "**") {
      std::string_view rest = p.substr(2);
      if (!rest.empty() && rest[0] == '/') rest.remove_prefix(1);
      for (size_t i = 0; i <= s.size(); ++i)
        if (reference_glob(rest, s.substr(i))) return true;
      return false;
    }
    if (p[0] == '*') {
      for (size_t i = 0; i <= s.size(); ++i) {
        if (reference_glob(p.substr(1), s.substr(i))) return true;
        if (i < s.size() && s[i] == '/') break;
      }
      return false;
    }
    if (s.empty()) return false;
    if (p[0] == '?') {
      if (s[0] == '/') return false;
    } else if (p[0] != s[0]) {
      return false;
    }
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}

}  // namespace

TEST(PathMatch, GlobKeepsItsSemantics) {
  using cp::plugins::path_allowed;
  EXPECT_TRUE(path_allowed("docs/*.md", "docs/a.md"));
  EXPECT_FALSE(path_allowed("docs/*.md", "docs/x/a.md"));
  EXPECT_TRUE(path_allowed("**/*.pem", "a/b/c.pem"));
  EXPECT_TRUE(path_allowed("**/*.pem", "c.pem"));
  EXPECT_TRUE(path_allowed("a/**/b", "a/b"));
  EXPECT_TRUE(path_allowed("a/**/b", "a/x/y/b"));
  EXPECT_TRUE(path_allowed("src/?.c", "src/a.c"));
  EXPECT_FALSE(path_allowed("src/?.c", "src//.c"));
  EXPECT_TRUE(path_allowed("src/", "src/a/b"));
  EXPECT_FALSE(path_allowed("src", "srcx/a"));
  // Random patterns and paths over a small alphabet agree with the old recursive matcher.
  std::mt19937 rng(7);
  const std::string pat_chars = "ab/*?", path_chars = "ab/";
  for (int n = 0; n < 20000; ++n) {
    std::string p, s;
    for (int i = rng() % 8; i > 0; --i) p += pat_chars[rng() % pat_chars.size()];
    for (int i = rng() % 8; i > 0; --i) s += path_chars[rng() % path_chars.size()];
    ASSERT_EQ(cp::plugins::detail::glob(p, s), reference_glob(p, s))
        << "pattern '" << p << "' path '" << s << "'";
  }
}

TEST(PathMatch, ManyDoubleStarsOnALongPathFinish) {
  std::string pattern;
  for (int i = 0; i < 20; ++i) pattern += "**/x";
  std::string path;
  while (path.size() < 200) path += "x/";
  path += "y";  // never matches: the old matcher tried every split of every '**'
  EXPECT_FALSE(cp::plugins::path_allowed(pattern, path));
  path.pop_back();
  path += "x";
  EXPECT_TRUE(cp::plugins::path_allowed(pattern, path));
  std::string stars;
  for (int i = 0; i < 5000; ++i) stars += "*/";
  EXPECT_FALSE(cp::plugins::path_allowed(stars + "z", std::string(3000, 'a')));
}
