// Which project root a command uses when --root is not given: $CP_HOST_ROOT, else the nearest folder at or
// above the current one marked as a project (as git finds its repository); and an error that a root decides
// names the root used and how to choose another. Real binary, real folders.
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

using cp::test::Ran;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

Ran host_from(const fs::path& cwd, std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<std::string> argv{CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR};
  argv.insert(argv.end(), args.begin(), args.end());
  return cp::test::run_env(argv, env, cwd);
}

// A project (the shipped contracts, packs and policies) with a folder three levels down in it.
struct NestedProject {
  cp::test::TempDir dir;
  fs::path deep = dir / "src" / "a" / "b";
  NestedProject() {
    for (const char* d : {"packs", "policies", "contracts"})
      fs::copy(fs::path(CP_SOURCE_DIR) / d, dir / d, fs::copy_options::recursive);
    fs::create_directories(deep);
  }
};

int checked_count(const Ran& r) {
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out, nullptr, false);
  return j.is_object() ? j.value("files_checked", -1) : -1;
}

// A contract that names the shipped pack "medium", alone in a folder with no project around it.
fs::path contract_without_project(const fs::path& dir) {
  json c = json::parse(cp::test::read_file(fs::path(CP_SOURCE_DIR) / "contracts/examples/fix-greeting.json"));
  c["runtime_options"]["pack"] = "medium";
  cp::test::write_file(dir / "task.json", c.dump(2));
  return dir / "task.json";
}

}  // namespace

TEST(ProjectRoot, ACommandRunInASubfolderUsesTheProjectAroundIt) {
  NestedProject p;
  cp::test::write_file(p.dir / "cortexpilot.toml", "# cp-host project\n");
  const int want = checked_count(
      host_from(p.dir.path(), {"--root", p.dir.path().string(), "validate", "--format", "json"}));
  ASSERT_GT(want, 3);
  EXPECT_EQ(checked_count(host_from(p.deep, {"validate", "--format", "json"})), want);
}

TEST(ProjectRoot, AProjectFileMarksTheRootAboveAnyPacksFolderFurtherUp) {
  NestedProject p;
  // A project of its own inside the first one, marked by its project file, holding one valid contract.
  const fs::path inner = p.dir / "src";
  cp::test::write_file(inner / "cortexpilot.toml", "# cp-host project\n");
  fs::create_directories(inner / "contracts");
  fs::copy(p.dir / "contracts/examples/noop.json", inner / "contracts/noop.json");
  Ran r = host_from(p.deep, {"validate", "--format", "json", "--no-plugin-checks"});
  // The inner root has no packs: the contract's pack cannot be found there, which shows which root was used.
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(json::parse(r.out)["files_checked"], 1) << r.out;
  EXPECT_NE(r.err.find("the project root was " + fs::weakly_canonical(inner).string()), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("cortexpilot.toml in"), std::string::npos) << r.err;
}

TEST(ProjectRoot, CpHostRootChoosesTheRootAndRootOverridesIt) {
  NestedProject p;
  cp::test::TempDir elsewhere;
  const int want = checked_count(host_from(p.dir.path(), {"validate", "--format", "json"}));
  EXPECT_EQ(checked_count(host_from(elsewhere.path(), {"validate", "--format", "json"},
                                    {"CP_HOST_ROOT=" + p.dir.path().string()})),
            want);
  // --root wins over the variable: an empty folder has nothing to check, and says which folder that was.
  Ran r = host_from(elsewhere.path(), {"--root", elsewhere.path().string(), "validate", "--format", "json"},
                    {"CP_HOST_ROOT=" + p.dir.path().string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("nothing to validate: no contracts/, packs/ or policies/ under " +
                       elsewhere.path().string()),
            std::string::npos)
      << r.err;
}

TEST(ProjectRoot, AMissingPackNamesTheRootUsedAndHowToChooseAnother) {
  cp::test::TempDir lone;
  const fs::path contract = contract_without_project(lone.path());
  Ran v = host_from(lone.path(), {"validate", contract.string()});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_NE(v.out.find("pack 'medium' does not exist"), std::string::npos) << v.out;
  for (const std::string& err : {v.err}) {
    EXPECT_NE(err.find("the project root was " + fs::weakly_canonical(lone.path()).string()),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("--root DIR or CP_HOST_ROOT=DIR"), std::string::npos) << err;
    EXPECT_NE(err.find("chosen by the current folder"), std::string::npos) << err;
  }
  // The same for a run: refused before anything starts, with the same line.
  cp::test::sh(
      "git init -q repo && cd repo && echo x > a && git add a && git -c user.email=t@t -c user.name=t "
      "commit -qm i",
      lone.path());
  Ran run = host_from(lone.path(), {"run", contract.string(), "--repo", (lone / "repo").string()},
                      {"CP_HOST_KEY_DIR=" + (lone / "keys").string()});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.err.find("pack 'medium' does not exist"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("the project root was"), std::string::npos) << run.err;
  const fs::path runs = lone / ".runtime-cache/cortexpilot/runs";
  EXPECT_TRUE(!fs::exists(runs) || fs::is_empty(runs)) << "nothing was run";
}

TEST(ProjectRoot, PacksAndPoliciesAboveTheCurrentFolderDoNotMakeARoot) {
  NestedProject p;  // packs/ and policies/ but no project file: a project only where they are
  Ran r = host_from(p.deep, {"validate", "--format", "json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("nothing to validate"), std::string::npos) << r.err;
  EXPECT_GT(checked_count(host_from(p.dir.path(), {"validate", "--format", "json"})), 3);
}

TEST(ProjectRoot, AProjectFileOthersMayWriteIsNotTrusted) {
  NestedProject p;
  cp::test::write_file(p.dir / "cortexpilot.toml", "# cp-host project\n");
  // A folder others may write to: anyone could have planted the project file (and the policies beside it).
  fs::permissions(p.dir.path(), fs::perms::group_write | fs::perms::others_write, fs::perm_options::add);
  Ran r = host_from(p.deep, {"validate", "--format", "json"});
  fs::permissions(p.dir.path(), fs::perms::group_write | fs::perms::others_write, fs::perm_options::remove);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("was not used as the project file because"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("others may write to it"), std::string::npos) << r.err;
  // The same for the file itself.
  fs::permissions(p.dir / "cortexpilot.toml", fs::perms::others_write, fs::perm_options::add);
  Ran f = host_from(p.deep, {"validate", "--format", "json"});
  EXPECT_EQ(f.exit_code, 2) << f.out << f.err;
  EXPECT_NE(f.err.find("others may write to it"), std::string::npos) << f.err;
}

TEST(ProjectRoot, AProjectFileInsideTheRuntimeCacheIsPassedOver) {
  NestedProject p;
  cp::test::write_file(p.dir / "cortexpilot.toml", "# cp-host project\n");
  // A kept worktree whose run wrote a project file of its own: the project around the cache is used.
  const fs::path worktree = p.dir / ".runtime-cache/cortexpilot/worktrees/run-x";
  fs::create_directories(worktree / "src");
  cp::test::write_file(worktree / "cortexpilot.toml", "# planted\n");
  const int want = checked_count(host_from(p.dir.path(), {"validate", "--format", "json"}));
  EXPECT_EQ(checked_count(host_from(worktree / "src", {"validate", "--format", "json"})), want);
}

TEST(ProjectRoot, ACommandThatExecutesNamesARootFoundAboveTheCurrentFolder) {
  NestedProject p;
  cp::test::write_file(p.dir / "cortexpilot.toml", "# cp-host project\n");
  Ran r = host_from(p.deep, {"run", "no-such-contract.json"});
  EXPECT_NE(r.err.find("cp-host: project root " + p.dir.path().string() + " (chosen by cortexpilot.toml in"),
            std::string::npos)
      << r.err;
  Ran here = host_from(p.dir.path(), {"run", "no-such-contract.json"});
  EXPECT_EQ(here.err.find("cp-host: project root"), std::string::npos) << here.err;
}

TEST(ProjectRoot, AKeptWorktreeWithPlantedPacksIsNeverTheRoot) {
  NestedProject p;
  cp::test::write_file(p.dir / "cortexpilot.toml", "# cp-host project\n");
  // A run kept its worktree and wrote a project of its own into it: project file, packs, policies.
  const fs::path worktree = p.dir / ".runtime-cache/cortexpilot/worktrees/run-y";
  for (const char* d : {"packs", "policies"}) fs::create_directories(worktree / d);
  cp::test::write_file(worktree / "cortexpilot.toml", "# planted\n");
  const int want = checked_count(host_from(p.dir.path(), {"validate", "--format", "json"}));
  Ran r = host_from(worktree, {"validate", "--format", "json"});
  EXPECT_EQ(checked_count(r), want) << "the project whose cache holds the worktree is the root";
  Ran runs = host_from(worktree, {"run", "no-such-contract.json"});
  EXPECT_NE(runs.err.find("cp-host: project root " + p.dir.path().string()), std::string::npos) << runs.err;
}

TEST(ProjectRoot, PacksOthersMayWriteInTheCurrentFolderAreRefused) {
  NestedProject p;
  cp::test::write_file(p.dir / "cortexpilot.toml", "# cp-host project\n");
  fs::permissions(p.dir / "packs", fs::perms::others_write, fs::perm_options::add);
  Ran r = host_from(p.dir.path(), {"validate", "--format", "json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("others may write to " + (p.dir / "packs").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--root DIR"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "") << "nothing was checked against those packs";
  // --root says the user chose it: then it is used.
  EXPECT_GT(checked_count(host_from(p.dir.path(), {"--root", ".", "validate", "--format", "json"})), 3);
  // help and version read no root.
  EXPECT_EQ(host_from(p.dir.path(), {"version"}).exit_code, 0);
}

// A shared folder (world-writable and sticky, like /tmp) where another user planted a project: packs that
// pass anything, policies, a .runtime-cache of theirs. A command run there refuses to take it as the root,
// and nothing is written under the planted cache.
TEST(ProjectRoot, AProjectAnotherUserPlantedInASharedFolderIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the planted files to another user";
  cp::test::TempDir shared;
  fs::permissions(shared.path(), fs::perms::all | fs::perms::sticky_bit, fs::perm_options::replace);
  for (const char* d : {"packs", "policies"})
    fs::copy(fs::path(CP_SOURCE_DIR) / d, shared / d, fs::copy_options::recursive);
  cp::test::write_file(shared / "cortexpilot.toml", "# planted\n");
  fs::create_directories(shared / ".runtime-cache");
  for (const char* name : {"packs", "policies", "cortexpilot.toml", ".runtime-cache"})
    ASSERT_EQ(::chown((shared / name).c_str(), 65534, 65534), 0) << name;
  const fs::path contract = contract_without_project(shared.path());
  Ran r = host_from(shared.path(), {"run", contract.string(), "--repo", shared.path().string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("belongs to another user"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_empty(shared / ".runtime-cache")) << "nothing was written under the planted cache";
  // The root's own files (root owns them) are trusted: the same folder given to root is used.
  for (const char* name : {"packs", "policies", "cortexpilot.toml", ".runtime-cache"})
    ASSERT_EQ(::chown((shared / name).c_str(), 0, 0), 0) << name;
  EXPECT_GT(checked_count(host_from(shared.path(), {"validate", "--format", "json"})), 1);
}
