// `cp-host init` in a fresh repository, then `validate` and a run there with no --root: the starter project
// is complete and the root is found from the repository. Real binary, real git, real run.
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using cp::test::Ran;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct FreshRepo {
  cp::test::TempDir dir;
  cp::test::TempDir keys;
  fs::path repo = dir / "repo";
  FreshRepo() {
    fs::create_directories(repo);
    cp::test::sh(
        "git init -q && echo hello > README.md && git add README.md && "
        "git -c user.email=t@t -c user.name=t commit -qm first",
        repo);
  }
  Ran cp_host(std::vector<std::string> args, const fs::path& cwd) const {
    std::vector<std::string> argv{CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR};
    argv.insert(argv.end(), args.begin(), args.end());
    return cp::test::run_env(argv, {"CP_HOST_KEY_DIR=" + keys.path().string()}, cwd);
  }
};

}  // namespace

TEST(Init, ThenValidateThenARunInAFreshRepository) {
  FreshRepo f;
  Ran init = f.cp_host({"init", "--json"}, f.repo);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  json written = json::parse(init.out);
  EXPECT_EQ(written["root"], fs::weakly_canonical(f.repo).string());
  for (const char* rel :
       {"cortexpilot.toml", "packs/low.json", "policies/role_config.json", "contracts/example.json"})
    EXPECT_TRUE(fs::is_regular_file(f.repo / rel)) << rel;

  // From a folder inside the repository, with no --root: the project file marks the root.
  fs::create_directories(f.repo / "src" / "deep");
  Ran v = f.cp_host({"validate", "--format", "json"}, f.repo / "src" / "deep");
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_GE(json::parse(v.out)["files_checked"].get<int>(), 10) << v.out;

  Ran run = f.cp_host({"run", "contracts/example.json", "--repo", ".", "--json"}, f.repo);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const std::string id = json::parse(run.out)["run_id"];
  const fs::path bundle = f.repo / ".runtime-cache/cortexpilot/runs" / id;
  EXPECT_EQ(json::parse(cp::test::read_file(bundle / "manifest.json"))["verdict"], "success");
  Ran verify = f.cp_host({"runs", "verify", id}, f.repo / "src");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  // The run changed nothing in the repository itself.
  EXPECT_EQ(cp::test::read_file(f.repo / "README.md"), "hello\n");
}

TEST(Init, NothingIsOverwrittenWithoutForceAndALinkIsReplacedNotFollowed) {
  FreshRepo f;
  cp::test::write_file(f.repo / "packs/low.json", "{\"mine\": true}");
  Ran again = f.cp_host({"init"}, f.repo);
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(cp::test::read_file(f.repo / "packs/low.json"), "{\"mine\": true}");
  EXPECT_FALSE(fs::exists(f.repo / "cortexpilot.toml")) << "nothing was written";

  // A link in place of a file init writes points outside the repository: --force replaces the link.
  cp::test::TempDir outside;
  cp::test::write_file(outside / "victim.json", "keep");
  fs::remove(f.repo / "packs/low.json");
  fs::create_symlink(outside / "victim.json", f.repo / "packs/low.json");
  Ran forced = f.cp_host({"init", "--force"}, f.repo);
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(cp::test::read_file(outside / "victim.json"), "keep");
  EXPECT_FALSE(fs::is_symlink(f.repo / "packs/low.json"));
  EXPECT_EQ(cp::test::read_file(f.repo / "packs/low.json"),
            cp::test::read_file(fs::path(CP_SOURCE_DIR) / "packs/low.json"));
}
