// The conventions of the command line: a mistyped command is named with the commands close to it, `help`
// shows any command's help, `version --json` describes the build, and the completion script loads in bash and
// completes commands at every level. Real binary, real bash.
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

using cp::test::Ran;
using nlohmann::json;

namespace {

Ran cli_run(std::vector<std::string> args) {
  std::vector<std::string> argv{CP_HOST_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return cp::test::run(argv);
}

// What the generated bash completion offers after `line` (the word being completed is the last one).
std::string bash_completions(const std::string& line) {
  Ran r = cp::test::sh(std::string("bash -c 'source <(\"") + CP_HOST_BIN +
                       "\" completion bash) && COMP_WORDS=(" + line +
                       ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _cp_host && echo \"${COMPREPLY[*]}\"'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

}  // namespace

TEST(CliConventions, AMistypedCommandNamesTheCommandsCloseToIt) {
  Ran r = cli_run({"--root", "/nonexistent", "runz"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'runz' is not a command of `cp-host`. Did you mean 'run' or 'runs'?"),
            std::string::npos)
      << r.err;
  Ran sub = cli_run({"runs", "lsit"});
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_NE(sub.err.find("Did you mean 'list'?"), std::string::npos) << sub.err;
  EXPECT_NE(sub.err.find("cp-host help runs"), std::string::npos) << sub.err;
  Ran none = cli_run({"qqqqqq"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err.find("Did you mean"), std::string::npos) << none.err;
}

TEST(CliConventions, HelpShowsTheHelpOfAnyCommand) {
  Ran top = cli_run({"help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("validate"), std::string::npos) << top.out;
  Ran show = cli_run({"help", "runs", "show"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(show.out, cli_run({"runs", "show", "--help"}).out);
  Ran bad = cli_run({"help", "runs", "shwo"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("Did you mean 'show'?"), std::string::npos) << bad.err;
}

TEST(CliConventions, VersionJsonDescribesTheBuild) {
  Ran r = cli_run({"version", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_TRUE(j["version"].is_string());
  EXPECT_TRUE(std::regex_match(j["plugin_abi"].get<std::string>(), std::regex("[0-9]+\\.[0-9]+")));
  EXPECT_GT(j["schemas"].size(), 10u);
  EXPECT_TRUE(std::regex_match(j["schema_set_sha256"].get<std::string>(), std::regex("[0-9a-f]{64}")));
  EXPECT_EQ(json::parse(cli_run({"version", "--output", "json"}).out), j);
  EXPECT_NE(cli_run({"--version"}).out.find(j["version"].get<std::string>()), std::string::npos);
}

TEST(CliConventions, TheBashCompletionLoadsAndCompletesEveryLevel) {
  Ran r = cp::test::sh(std::string("bash -c 'source <(\"") + CP_HOST_BIN +
                       "\" completion bash); complete -p cp-host'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("complete -F _cp_host cp-host"), std::string::npos) << r.out;
  EXPECT_EQ(bash_completions("cp-host ru"), "run runs\n");
  EXPECT_EQ(bash_completions("cp-host runs ver"), "verify\n");
  EXPECT_EQ(bash_completions("cp-host --root x runs ver"), "verify\n")
      << "a global option's value is not a command";
  EXPECT_NE(bash_completions("cp-host runs verify --a").find("--all"), std::string::npos);
  EXPECT_NE(bash_completions("cp-host runs verify --ro").find("--root"), std::string::npos)
      << "global options too";
}

// zsh loads the script through bashcompinit: the function is registered for cp-host and offers the
// command words of the level reached (zsh itself then filters them by the prefix typed).
TEST(CliConventions, TheZshCompletionLoadsThroughBashcompinitAndOffersEachLevel) {
  if (cp::test::sh("command -v zsh").exit_code != 0) GTEST_SKIP() << "zsh is not installed";
  cp::test::TempDir home;
  auto offered = [&](const std::string& words, int cword) {
    Ran r = cp::test::sh(std::string("zsh -f -c 'autoload -U compinit && compinit -u -d \"") +
                             (home / "zcompdump").string() + "\" && source <(\"" + CP_HOST_BIN +
                             "\" completion zsh) && print -r -- ${_comps[cp-host]} && setopt ksharrays && "
                             "COMP_WORDS=(" +
                             words + ") && COMP_CWORD=" + std::to_string(cword) +
                             " && _cp_host && print -r -- \"${COMPREPLY[*]}\"'",
                         home.path());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    return r.out;
  };
  std::string top = offered("cp-host ru", 1);
  EXPECT_EQ(top.substr(0, top.find('\n')), "_bash_complete -F _cp_host");
  EXPECT_NE(top.find(" runs "), std::string::npos) << top;
  std::string runs = offered("cp-host runs ver", 2);
  EXPECT_NE(runs.find("verify"), std::string::npos) << runs;
  EXPECT_EQ(runs.find("validate"), std::string::npos)
      << "the words of `runs`, not of the top level: " << runs;
}

// fish completes the line itself (`complete -C`): commands at every level, a command's options, and the
// global options after any command.
TEST(CliConventions, TheFishCompletionCompletesEveryLevel) {
  if (cp::test::sh("command -v fish").exit_code != 0) GTEST_SKIP() << "fish is not installed";
  cp::test::TempDir home;
  auto complete = [&](const std::string& line) {
    Ran r = cp::test::run_env(
        {"fish", "--no-config", "-c",
         std::string("source (\"") + CP_HOST_BIN + "\" completion fish | psub); complete -C '" + line + "'"},
        {"HOME=" + home.path().string(), "XDG_CONFIG_HOME=" + home.path().string(),
         "XDG_DATA_HOME=" + home.path().string()},
        home.path());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(complete("cp-host ru"), "run\nruns\n");
  EXPECT_EQ(complete("cp-host runs ver"), "verify\n");
  EXPECT_EQ(complete("cp-host --root x runs ver"), "verify\n");
  EXPECT_EQ(complete("cp-host runs verify --a"), "--all\n");
  EXPECT_NE(complete("cp-host runs verify --ro").find("--root"), std::string::npos) << "global options too";
}

TEST(CliConventions, TheBashCompletionKeepsFileNamesWithSpacesWhole) {
  cp::test::TempDir dir;
  cp::test::write_file(dir / "my task.json", "{}");
  Ran r = cp::test::sh(std::string("bash -c 'source <(\"") + CP_HOST_BIN +
                           "\" completion bash) && COMP_WORDS=(cp-host validate my) && COMP_CWORD=2 && "
                           "_cp_host && printf \"%s|\" \"${COMPREPLY[@]}\"'",
                       dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "my task.json|");
}

TEST(CliConventions, OutputJsonIsTheJsonFlagOnEveryCommandThatHasOne) {
  cp::test::TempDir root;
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"runs", "list"}, {"plugins", "list"}, {"version"}}) {
    std::vector<std::string> base{"--root", root.path().string(), "--plugins", CP_PLUGIN_DIR};
    base.insert(base.end(), cmd.begin(), cmd.end());
    auto with = [&](std::vector<std::string> extra) {
      std::vector<std::string> a = base;
      a.insert(a.end(), extra.begin(), extra.end());
      return cli_run(a);
    };
    Ran flag = with({"--json"}), output = with({"--output", "json"}), eq = with({"--output=json"});
    ASSERT_EQ(flag.exit_code, 0) << flag.err;
    EXPECT_EQ(output.exit_code, 0) << output.err;
    EXPECT_FALSE(json::parse(output.out, nullptr, false).is_discarded()) << output.out;
    EXPECT_EQ(json::parse(output.out, nullptr, false), json::parse(flag.out, nullptr, false)) << cmd[0];
    EXPECT_EQ(eq.out, output.out) << cmd[0];
    EXPECT_EQ(with({"--output", "text"}).out, with({}).out) << cmd[0];
    if (cmd[0] != "version") {
      EXPECT_EQ(with({"-ojson"}).out, output.out) << cmd[0];
    }
    Ran bad = with({"--output", "yaml"});
    EXPECT_EQ(bad.exit_code, 2) << cmd[0] << bad.out;
    Ran both = with({"--json", "-o", "text"});
    EXPECT_EQ(both.exit_code, 2) << cmd[0] << both.out;
    EXPECT_NE(both.err.find("contradicts --json"), std::string::npos) << both.err;
  }
}

TEST(CliConventions, ColourOnlyOnATerminalAndNeverWithNoColor) {
  const std::string validate = std::string("'") + CP_HOST_BIN + "' --root '" + CP_SOURCE_DIR +
                               "' --plugins '" + CP_PLUGIN_DIR + "' validate";
  const std::string green_ok = "\033[32mok:\033[0m";
  // On a terminal (script(1) gives the command a pseudo-terminal): coloured.
  Ran tty = cp::test::sh("script -qec \"" + validate + "\" /dev/null");
  EXPECT_EQ(tty.exit_code, 0) << tty.out << tty.err;
  EXPECT_NE(tty.out.find(green_ok), std::string::npos) << tty.out;
  // The same terminal with NO_COLOR set: none.
  Ran no = cp::test::sh("NO_COLOR=1 script -qec \"" + validate + "\" /dev/null");
  EXPECT_EQ(no.exit_code, 0) << no.err;
  EXPECT_NE(no.out.find("ok:"), std::string::npos) << no.out;
  EXPECT_EQ(no.out.find('\033'), std::string::npos) << no.out;
  // Into a pipe: none, unless forced; NO_COLOR wins over the force.
  Ran pipe = cp::test::sh(validate + " | cat");
  EXPECT_EQ(pipe.out.find('\033'), std::string::npos) << pipe.out;
  EXPECT_NE(cp::test::sh("CLICOLOR_FORCE=1 " + validate + " | cat").out.find(green_ok), std::string::npos);
  EXPECT_EQ(cp::test::sh("NO_COLOR=1 CLICOLOR_FORCE=1 " + validate + " | cat").out.find('\033'),
            std::string::npos);
}

// A file named `*` completes as itself, not as every file of the folder; and the shell's own noglob
// setting is left as it was.
TEST(CliConventions, TheBashCompletionNeverExpandsAGlob) {
  cp::test::TempDir dir;
  for (const char* name : {"*", "a.json", "b.json"}) cp::test::write_file(dir / name, "{}");
  Ran r =
      cp::test::sh(std::string("bash -c 'source <(\"") + CP_HOST_BIN +
                       "\" completion bash) && COMP_WORDS=(cp-host validate \"*\") && COMP_CWORD=2 && "
                       "_cp_host && printf \"%s|\" \"${COMPREPLY[@]}\" && [[ $- != *f* ]] && echo globbing'",
                   dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "*|globbing\n");
}

// zsh runs the same function through bashcompinit's compgen, in sh emulation, where a command
// substitution's words are globbed unless noglob is set: a file named `*` is offered once, as itself, and
// not again as every file of the folder.
TEST(CliConventions, TheZshCompletionNeverExpandsAGlob) {
  if (cp::test::sh("command -v zsh").exit_code != 0) GTEST_SKIP() << "zsh is not installed";
  cp::test::TempDir dir, home;
  for (const char* name : {"*", "a.json", "b c.json"}) cp::test::write_file(dir / name, "{}");
  Ran r = cp::test::sh(std::string("zsh -f -c 'autoload -U compinit && compinit -u -d \"") +
                           (home / "zcompdump").string() + "\" && source <(\"" + CP_HOST_BIN +
                           "\" completion zsh) && words=(cp-host validate \"*\") && CURRENT=3 && "
                           "COMP_WORDS=(cp-host validate \"*\") && COMP_CWORD=2 && "
                           "compgen -F _cp_host -- \"*\"'",
                       dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // One line a file, each file once, whatever order the shell sorts them in.
  auto times = [&](const std::string& line) {
    size_t n = 0;
    for (size_t at = 0; (at = ("\n" + r.out).find("\n" + line + "\n", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  size_t lines = 0;
  for (char c : r.out) lines += c == '\n';
  EXPECT_EQ(lines, 3u) << r.out;
  for (const char* name : {"*", "a.json", "b c.json"}) EXPECT_EQ(times(name), 1u) << name << " in " << r.out;
}

// What docs/cli.md says of colour, in the order the code reads it: an empty NO_COLOR counts as unset;
// CLICOLOR_FORCE (but `0`) colours a pipe and a TERM=dumb terminal; TERM=dumb alone has none.
TEST(CliConventions, AnEmptyNoColorIsIgnoredAndTheForceWinsOverADumbTerminal) {
  const std::string validate = std::string("'") + CP_HOST_BIN + "' --root '" + CP_SOURCE_DIR +
                               "' --plugins '" + CP_PLUGIN_DIR + "' validate";
  const std::string green_ok = "\033[32mok:\033[0m";
  auto coloured = [](const Ran& r) { return r.out.find('\033') != std::string::npos; };
  Ran empty = cp::test::sh("NO_COLOR= CLICOLOR_FORCE=1 " + validate + " | cat");
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_NE(empty.out.find(green_ok), std::string::npos) << "an empty NO_COLOR is no NO_COLOR: " << empty.out;
  EXPECT_FALSE(coloured(cp::test::sh("CLICOLOR_FORCE=0 " + validate + " | cat")));
  EXPECT_FALSE(coloured(cp::test::sh("CLICOLOR_FORCE= " + validate + " | cat")));
  Ran dumb = cp::test::sh("TERM=dumb script -qec \"" + validate + "\" /dev/null");
  EXPECT_EQ(dumb.exit_code, 0) << dumb.err;
  EXPECT_NE(dumb.out.find("ok:"), std::string::npos) << dumb.out;
  EXPECT_FALSE(coloured(dumb)) << dumb.out;
  Ran forced = cp::test::sh("TERM=dumb CLICOLOR_FORCE=1 script -qec \"" + validate + "\" /dev/null");
  EXPECT_NE(forced.out.find(green_ok), std::string::npos) << forced.out;
}
