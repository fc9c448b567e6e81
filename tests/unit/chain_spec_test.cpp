// The order of a task chain's steps (chain/chain_spec.hpp): implicit waits, parallel groups, explicit
// depends_on, the overlap rule, and what is refused with a pointer (unknown ids, handoffs, self, cycles, a
// group used twice, a path outside the repository); inline contracts checked like files, their
// diagnostics under the contract's pointer; a chain from the API confined to the project's files.
#include "chain/chain_spec.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace cp::chain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json contract(const std::string& task, std::vector<std::string> allowed) {
  json c = json::parse(cp::test::read_file(fs::path(CP_SOURCE_DIR) / "contracts/examples/fix-greeting.json"));
  c["task_id"] = task;
  c["allowed_paths"] = allowed;
  c["required_outputs"] = json::array();
  return c;
}

json task(const std::string& id, std::vector<std::string> allowed, json extra = json::object()) {
  json s{{"step_id", id}, {"kind", "task"}, {"role", "WORKER"}, {"contract", contract(id, allowed)}};
  for (const auto& [k, v] : extra.items()) s[k] = v;
  return s;
}

json chain_of(json steps) {
  return {{"schema_version", 1},
          {"chain_id", "order"},
          {"lifecycle", {{"require_pm_loop", false}}},
          {"steps", std::move(steps)}};
}

struct Loaded {
  LoadResult r;
  cp::test::TempDir staging;
  const Step& step(const std::string& id) const {
    for (const auto& s : r.spec.steps)
      if (s.id == id) return s;
    throw std::runtime_error("no step " + id);
  }
  std::vector<std::string> order() const {
    std::vector<std::string> ids;
    for (size_t i : r.spec.order) ids.push_back(r.spec.steps[i].id);
    return ids;
  }
  bool has(const std::string& pointer, const std::string& rule) const {
    for (const auto& d : r.diagnostics)
      if (d.pointer == pointer && d.rule == rule) return true;
    return false;
  }
  std::string all() const {
    std::string s;
    for (const auto& d : r.diagnostics)
      s += d.file + " " + d.pointer + " [" + d.rule + "] " + d.message + "\n";
    return s;
  }
};

std::unique_ptr<Loaded> load(const json& doc, ChainSource src = {}) {
  auto l = std::make_unique<Loaded>();
  if (src.display.empty()) src.display = "request body";
  src.staging = l->staging.path() / "contracts";
  l->r = load_chain_document(doc, src, CP_SOURCE_DIR, {}, nullptr);
  return l;
}

using Ids = std::vector<std::string>;

TEST(ChainOrder, StepsWaitForTheStepBeforeAndGroupsStartTogether) {
  auto l = load(chain_of({task("plan", {"docs/"}),
                          task("a", {"src/a/"}, {{"parallel_group", "build"}}),
                          task("b", {"src/b/"}, {{"parallel_group", "build"}}),
                          {{"step_id", "h"},
                           {"kind", "handoff"},
                           {"from_role", "WORKER"},
                           {"to_role", "WORKER"},
                           {"summary", "both built"}},
                          task("check", {"tests/"})}));
  ASSERT_TRUE(l->r.ok) << l->all();
  EXPECT_TRUE(l->step("plan").depends_on.empty());
  EXPECT_EQ(l->step("a").depends_on, Ids{"plan"});
  EXPECT_EQ(l->step("b").depends_on, Ids{"plan"}) << "a group's steps wait for what precedes the group";
  EXPECT_EQ(l->step("check").depends_on, (Ids{"a", "b"})) << "the step after a group waits for all of it";
  EXPECT_EQ(l->order(), (Ids{"plan", "a", "b", "check"}));
  EXPECT_EQ(l->step("a").lock_paths, Ids{"src/a/"});
  // The inline contracts were staged, and the copies are what the steps name.
  EXPECT_TRUE(fs::is_regular_file(l->step("a").contracts.at(0)));
  EXPECT_EQ(l->step("a").contracts.at(0).parent_path(), l->staging.path() / "contracts");
}

TEST(ChainOrder, ExplicitDependsOnReplacesTheImplicitWaitAndMayPointForward) {
  auto l = load(chain_of({task("report", {"docs/"}, {{"depends_on", {"fetch"}}}),
                          task("fetch", {"data/"}, {{"depends_on", json::array()}}), task("other", {"x/"})}));
  ASSERT_TRUE(l->r.ok) << l->all();
  EXPECT_EQ(l->step("report").depends_on, Ids{"fetch"});
  EXPECT_TRUE(l->step("fetch").depends_on.empty()) << "an empty depends_on: no wait at all";
  EXPECT_EQ(l->step("other").depends_on, Ids{"fetch"}) << "the step before it in the file";
  EXPECT_EQ(l->order(), (Ids{"fetch", "report", "other"}));
  // Without fetch's own depends_on it would wait for report, which waits for it.
  auto cyc =
      load(chain_of({task("report", {"docs/"}, {{"depends_on", {"fetch"}}}), task("fetch", {"data/"})}));
  EXPECT_FALSE(cyc->r.ok);
}

TEST(ChainOrder, CyclesUnknownIdsHandoffsAndSelfAreRefusedWithPointers) {
  auto cyc = load(chain_of({task("a", {"a/"}, {{"depends_on", {"b"}}}), task("b", {"b/"})}));
  EXPECT_FALSE(cyc->r.ok);
  EXPECT_TRUE(cyc->has("/steps/0/depends_on/0", "cycle")) << cyc->all();

  auto unknown = load(chain_of({task("a", {"a/"}), task("b", {"b/"}, {{"depends_on", {"a", "zz"}}})}));
  EXPECT_TRUE(unknown->has("/steps/1/depends_on/1", "xref:step")) << unknown->all();

  auto self = load(chain_of({task("a", {"a/"}, {{"depends_on", {"a"}}})}));
  EXPECT_TRUE(self->has("/steps/0/depends_on/0", "cycle")) << self->all();

  auto handoff = load(chain_of({task("a", {"a/"}),
                                {{"step_id", "h"},
                                 {"kind", "handoff"},
                                 {"from_role", "WORKER"},
                                 {"to_role", "WORKER"},
                                 {"summary", "s"}},
                                task("b", {"b/"}, {{"depends_on", {"h"}}})}));
  EXPECT_TRUE(handoff->has("/steps/2/depends_on/0", "xref:step")) << handoff->all();

  auto group = load(chain_of({task("a", {"a/"}, {{"parallel_group", "g"}}), task("b", {"b/"}),
                              task("c", {"c/"}, {{"parallel_group", "g"}})}));
  EXPECT_TRUE(group->has("/steps/2/parallel_group", "parallel_group")) << group->all();

  auto path = load(chain_of({task("a", {"a/"}, {{"exclusive_paths", {"../etc"}}})}));
  EXPECT_TRUE(path->has("/steps/0/exclusive_paths/0", "path")) << path->all();
  // Wrapped in a request body: the pointers say so.
  ChainSource wrapped;
  wrapped.pointer_prefix = "/chain";
  auto w = load(chain_of({task("a", {"a/"}, {{"depends_on", {"zz"}}})}), wrapped);
  EXPECT_TRUE(w->has("/chain/steps/0/depends_on/0", "xref:step")) << w->all();
}

TEST(ChainOrder, OverlappingStepsThatCouldRunAtOnceGoInFileOrder) {
  auto l = load(chain_of({task("a", {"src/"}, {{"parallel_group", "g"}}),
                          task("b", {"src/b.c"}, {{"parallel_group", "g"}}),
                          task("c", {"docs/"}, {{"parallel_group", "g"}, {"exclusive_paths", {"src/x/"}}}),
                          task("d", {"tests/"}, {{"parallel_group", "g"}})}));
  ASSERT_TRUE(l->r.ok) << l->all();
  EXPECT_EQ(l->step("b").ordered_after, Ids{"a"}) << "src/b.c is inside src/";
  EXPECT_EQ(l->step("c").ordered_after, (Ids{"a"})) << "exclusive_paths lock too";
  EXPECT_TRUE(l->step("d").ordered_after.empty()) << "tests/ overlaps nothing: d starts with a";
  EXPECT_EQ(l->step("c").lock_paths, (Ids{"docs/", "src/x/"}));
}

TEST(ChainOrder, InlineContractDiagnosticsPointIntoTheChain) {
  json bad = task("a", {"src/"});
  bad["contract"].erase("task_id");
  bad["role"] = "REVIEWER";
  auto l = load(chain_of({bad}));
  EXPECT_FALSE(l->r.ok);
  bool found = false;
  for (const auto& d : l->r.diagnostics)
    if (d.file == "request body" && d.pointer.rfind("/steps/0/contract", 0) == 0 &&
        d.schema == "task_contract")
      found = true;
  EXPECT_TRUE(found) << l->all();
  EXPECT_TRUE(l->has("/steps/0/role", "xref:role")) << l->all();
}

TEST(ChainOrder, AChainFromTheApiNamesOnlyFilesOfTheProject) {
  cp::test::TempDir project;
  cp::test::write_file(project / "contracts/a.json", contract("a", {"src/"}).dump());
  cp::test::TempDir outside;
  cp::test::write_file(outside / "secret.json", contract("s", {"src/"}).dump());
  fs::create_directory_symlink(outside.path(), project / "contracts/out");
  ChainSource src;
  src.base_dir = project.path();
  src.confine_paths = true;
  src.stage_all = true;
  json steps = json::array(
      {{{"step_id", "ok"}, {"kind", "task"}, {"role", "WORKER"}, {"contract", "contracts/a.json"}},
       {{"step_id", "abs"},
        {"kind", "task"},
        {"role", "WORKER"},
        {"contract", (outside / "secret.json").string()}},
       {{"step_id", "up"},
        {"kind", "task"},
        {"role", "WORKER"},
        {"contract", "../" + outside.path().filename().string() + "/secret.json"}},
       {{"step_id", "link"},
        {"kind", "task"},
        {"role", "WORKER"},
        {"contract", "contracts/out/secret.json"}}});
  auto l = load(chain_of(steps), src);
  EXPECT_FALSE(l->r.ok);
  EXPECT_TRUE(l->has("/steps/1/contract", "xref:contract")) << l->all();
  EXPECT_TRUE(l->has("/steps/2/contract", "xref:contract")) << l->all();
  EXPECT_TRUE(l->has("/steps/3/contract", "xref:contract")) << l->all();
  EXPECT_FALSE(l->has("/steps/0/contract", "xref:contract")) << l->all();
  // The file inside the project was copied: the copy is what would run.
  EXPECT_TRUE(fs::is_regular_file(l->staging / "contracts/ok.json"));
}

// Every task step and every reviewer is a run and a queue item: a small document naming one contract many
// times is refused by its count of runs before any contract is checked or copied.
TEST(ChainOrder, AChainOfMoreThan256RunsIsRefusedBeforeAnyContractIsRead) {
  json reviewers = json::array();
  for (int i = 0; i < 32; ++i) reviewers.push_back("missing.json");
  json steps = json::array();
  for (int i = 0; i < 9; ++i)
    steps.push_back({{"step_id", "review-" + std::to_string(i)},
                     {"kind", "review"},
                     {"role", "REVIEWER"},
                     {"reviewers", reviewers}});
  auto l = load(chain_of(steps));
  EXPECT_FALSE(l->r.ok);
  EXPECT_TRUE(l->has("/steps", "maxRuns")) << l->all();
  EXPECT_EQ(l->r.diagnostics.size(), 1u) << "no contract was looked at: " << l->all();
  EXPECT_FALSE(fs::exists(l->staging.path() / "contracts")) << "nothing copied";
}

}  // namespace
}  // namespace cp::chain
