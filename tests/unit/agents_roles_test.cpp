// The role config's rules in process: which prompt_refs are taken and how a prompt file is read, the
// compiler putting the assigned role's prompt into the compiled contract, and LiveRuns reading a live run's
// events incrementally and within its bounds.
#include "contract/compiler.hpp"
#include "contract/role_config.hpp"
#include "control/live_runs.hpp"
#include "core/runtime_paths.hpp"
#include "core/sha256.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace cp {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

TEST(RolePromptRef, OnlyRelativePathsUnderPoliciesWithoutDotSegments) {
  EXPECT_EQ(contract::prompt_ref_problem("policies/roles/worker.md"), "");
  EXPECT_EQ(contract::prompt_ref_problem("policies/a.md"), "");
  for (const char* bad :
       {"", "/etc/passwd", "roles/worker.md", "policies/../secret", "policies/roles/../../x",
        "policies//x.md", "policies/./x.md", "policies/roles/", "policies\\x.md"})
    EXPECT_NE(contract::prompt_ref_problem(bad), "") << bad;
  EXPECT_NE(contract::prompt_ref_problem(std::string("policies/a\0b", 12)), "");
  EXPECT_NE(contract::prompt_ref_problem("policies/" + std::string(300, 'a')), "");
}

TEST(RolePromptRef, ReadsRegularUtf8FilesBeneathTheRootAndNothingThroughALink) {
  test::TempDir d;
  test::write_file(d / "policies/roles/ok.md", "héllo\n");
  test::write_file(d / "secret.md", "secret");
  fs::create_symlink(d / "secret.md", d / "policies/roles/link.md");
  fs::create_directory_symlink(d.path(), d / "policies/up");
  test::write_file(d / "policies/roles/big.md", std::string(contract::kMaxRolePromptBytes + 1, 'x'));
  test::write_file(d / "policies/roles/latin1.md", "caf\xe9\n");
  test::write_file(d / "policies/roles/overlong.md", "\xc0\xaf");
  test::write_file(d / "policies/roles/nul.md", std::string("a\0b", 3));
  std::string why;
  auto ok = contract::read_role_prompt(d.path(), "policies/roles/ok.md", why);
  ASSERT_TRUE(ok) << why;
  EXPECT_EQ(ok->text, "héllo\n");
  EXPECT_EQ(ok->sha256, core::sha256_hex("héllo\n"));
  for (const char* bad : {"policies/roles/link.md", "policies/up/secret.md", "policies/roles/big.md",
                          "policies/roles/latin1.md", "policies/roles/overlong.md", "policies/roles/nul.md",
                          "policies/roles/missing.md", "policies/roles"}) {
    why.clear();
    EXPECT_FALSE(contract::read_role_prompt(d.path(), bad, why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(RoleConfigCompile, TheAssignedRolesPromptAndBindingAreCompiledIn) {
  test::TempDir d;
  for (const char* dir : {"packs", "policies"})
    fs::copy(fs::path(CP_SOURCE_DIR) / dir, d / dir, fs::copy_options::recursive);
  json c = json::parse(test::read_file(fs::path(CP_SOURCE_DIR) / "contracts/examples/fix-greeting.json"));
  c["runtime_options"]["runner"] = "codex";
  json cfg = json::parse(test::read_file(d / "policies/role_config.json"));
  cfg["roles"]["WORKER"]["runtime"] = {{"runner", "codex"}, {"model", "m-from-role"}};
  test::write_file(d / "policies/role_config.json", cfg.dump());
  auto compiled = contract::compile_contract(c, d.path());
  const json& rp = compiled.document["role_prompt"];
  EXPECT_EQ(rp["role"], "WORKER");
  EXPECT_EQ(rp["prompt_ref"], "policies/roles/worker.md");
  EXPECT_EQ(rp["text"], test::read_file(d / "policies/roles/worker.md"));
  EXPECT_EQ(rp["sha256"], core::sha256_hex(rp["text"].get<std::string>()));
  EXPECT_EQ(compiled.document["contract"]["runtime_options"]["model"], "m-from-role");
  EXPECT_TRUE(compiled.document["policies"].contains("role_config"));
  // The contract's own model wins; another runner than the role's gets none of the role's binding.
  c["runtime_options"]["model"] = "mine";
  EXPECT_EQ(contract::compile_contract(c, d.path()).document["contract"]["runtime_options"]["model"], "mine");
  c["runtime_options"].erase("model");
  c["runtime_options"]["runner"] = "claude";
  EXPECT_FALSE(
      contract::compile_contract(c, d.path()).document["contract"]["runtime_options"].contains("model"));
  // A changed prompt file changes the compiled contract's sha256: the bundle binds the prompt it ran with.
  auto before = contract::compile_contract(c, d.path()).sha256;
  test::write_file(d / "policies/roles/worker.md", "another prompt\n");
  EXPECT_NE(contract::compile_contract(c, d.path()).sha256, before);
  // A prompt that cannot be read stops the compile, naming the role.
  fs::remove(d / "policies/roles/worker.md");
  try {
    (void)contract::compile_contract(c, d.path());
    ADD_FAILURE() << "compiled without its prompt";
  } catch (const contract::CompileError& e) {
    EXPECT_NE(std::string(e.what()).find("WORKER"), std::string::npos) << e.what();
  }
}

// A bundle that looks live: its .live marker, a manifest and an events.jsonl written line by line.
struct LiveBundle {
  test::TempDir root;
  std::string id = "live-run-1";
  fs::path dir;
  long long seq = 0;
  LiveBundle() {
    dir = core::bundle_dir(root.path(), id);
    fs::create_directories(dir);
    test::write_file(core::live_marker(root.path(), id), "");
    test::write_file(dir / "manifest.json",
                     json{{"run_id", id},
                          {"task_id", "t"},
                          {"status", "running"},
                          {"runner", "codex"},
                          {"created_at", "2026-01-01T00:00:00Z"},
                          {"worktree", "/w/" + id},
                          {"role_binding_summary", {{"assigned", {{"role", "WORKER"}, {"agent_id", "a1"}}}}}}
                         .dump());
  }
  void append(const std::string& text) {
    std::ofstream out(dir / "events.jsonl", std::ios::app | std::ios::binary);
    out << text;
  }
  std::string event(const std::string& type, const json& payload) {
    return json{{"seq", ++seq}, {"ts", "2026-01-01T00:00:01Z"}, {"type", type}, {"payload", payload}}.dump() +
           "\n";
  }
  std::string changed(const std::string& path) {
    return event("FILE_CHANGED", {{"changes", json::array({{{"path", path}, {"kind", "update"}}})}});
  }
};

json only_run(const json& s) {
  EXPECT_EQ(s["runs"].size(), 1u) << s.dump(2);
  return s["runs"].empty() ? json() : s["runs"][0];
}

TEST(LiveRuns, ReadsEventsIncrementallyAndOnlyWholeLines) {
  LiveBundle b;
  control::LiveRuns live(b.root.path());
  b.append(b.event("RUN_STARTED", json::object()) + b.event("RUNNER_STARTED", {{"runner", "codex"}}) +
           b.changed("src/a.sh"));
  json r = only_run(live.snapshot());
  EXPECT_EQ(r["role"], "WORKER");
  EXPECT_EQ(r["agent_id"], "a1");
  EXPECT_EQ(r["stage"], "runner");
  EXPECT_EQ(r["worktree"], "/w/live-run-1");
  EXPECT_EQ(r["files_changed"]["count"], 1);
  // Half a line: not read until it is whole; the same path again is not a second file.
  std::string again = b.changed("src/a.sh");
  std::string next = b.changed("src/b.sh");
  b.append(again + next.substr(0, 10));
  r = only_run(live.snapshot());
  EXPECT_EQ(r["files_changed"]["count"], 1);
  EXPECT_EQ(r["files_changed"]["events"], 2);
  EXPECT_EQ(r["last_event"]["seq"], 4);
  b.append(next.substr(10) + b.event("RUNNER_FINISHED", {{"status", "completed"}}));
  r = only_run(live.snapshot());
  EXPECT_EQ(r["files_changed"]["paths"], json::array({"src/a.sh", "src/b.sh"}));
  EXPECT_EQ(r["stage"], "collect");
  EXPECT_EQ(r["events_read"]["caught_up"], true);
  // Sealed: its marker gone, it is no longer listed.
  fs::remove(core::live_marker(b.root.path(), b.id));
  EXPECT_TRUE(live.snapshot()["runs"].empty());
}

TEST(LiveRuns, StaysWithinItsBoundsOnHostileEvents) {
  LiveBundle b;
  control::LiveRuns::Limits lim;
  lim.bytes_per_run = 4096;
  lim.paths_kept = 3;
  lim.paths_listed = 2;
  control::LiveRuns live(b.root.path(), lim);
  // A line longer than a whole read, then nesting past the guard, then garbage, then real events.
  b.append(b.event("AGENT_MESSAGE", {{"text", std::string(10000, 'x')}}));
  b.append(std::string(200, '[') + "\n" + "not json\n");
  for (int i = 0; i < 5; ++i) b.append(b.changed("f" + std::to_string(i)));
  b.append(b.changed(std::string(5000 / 2, 'p')));
  json r;
  for (int i = 0; i < 10 && !(r = only_run(live.snapshot()))["events_read"]["caught_up"].get<bool>(); ++i) {
  }
  EXPECT_EQ(r["events_read"]["caught_up"], true) << r.dump(2);
  EXPECT_EQ(r["files_changed"]["count"], 3);
  EXPECT_EQ(r["files_changed"]["more"], true);
  EXPECT_EQ(r["files_changed"]["paths"].size(), 2u);
  EXPECT_EQ(r["files_changed"]["events"], 6);
  // A file replaced by a shorter one (recovery cut a torn line) is read again from its start.
  test::write_file(b.dir / "events.jsonl", b.changed("only.sh"));
  r = only_run(live.snapshot());
  EXPECT_EQ(r["files_changed"]["paths"], json::array({"only.sh"}));
  // An events file that is a link is not followed.
  fs::remove(b.dir / "events.jsonl");
  test::write_file(b.root / "elsewhere.jsonl", b.changed("leak"));
  fs::create_symlink(b.root / "elsewhere.jsonl", b.dir / "events.jsonl");
  control::LiveRuns fresh(b.root.path());
  EXPECT_EQ(only_run(fresh.snapshot())["files_changed"]["count"], 0);
}

}  // namespace
}  // namespace cp
