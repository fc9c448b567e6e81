// What serve's recovery removes of chain submissions that died part way (chain/chain_record.hpp:
// sweep_unqueued_chains): an old folder under queue/chains/.incoming/, an old record the queue never took;
// and what it keeps: a record the queue holds an item of, a record whose chain has a bundle, anything
// younger than the age (a submission under way).
#include "chain/chain_record.hpp"
#include "core/runtime_paths.hpp"
#include "queue/queue_backend.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cp::test {
namespace {

namespace fs = std::filesystem;

fs::path made(const fs::path& dir, bool old, bool record = true) {
  fs::create_directories(dir);
  const nlohmann::json rec{{"kind", "queued_chain"}, {"run_id", dir.filename().string()}};
  write_file(dir / "chain.json", record ? rec.dump() : "{}");
  if (old) fs::last_write_time(dir, fs::file_time_type::clock::now() - std::chrono::hours(2));
  return dir;
}

TEST(ChainSweep, OnlyOldSubmissionsNothingWillRunGo) {
  TempDir root;
  const fs::path chains = core::queue_chains_dir(root.path());
  const fs::path torn = made(chains / ".incoming" / "chain-20261201T000000Z-aaaaaa", true);
  const fs::path writing = made(chains / ".incoming" / "chain-20261201T000000Z-bbbbbb", false);
  const fs::path untaken = made(chains / "chain-20261201T000000Z-cccccc", true);
  const fs::path young = made(chains / "chain-20261201T000000Z-dddddd", false);
  const fs::path sealed = made(chains / "chain-20261201T000000Z-eeeeee", true);
  fs::create_directories(core::runs_dir(root.path()) / "chain-20261201T000000Z-eeeeee");
  const fs::path queued = made(chains / "chain-20261201T000000Z-ffffff", true);
  const fs::path not_a_run = made(chains / "notes", true, false);
  const fs::path other = made(chains / "chain-20261201T000000Z-gggggg", true, false);

  queue::BackendOptions o;
  o.root = root.path();
  auto q = queue::open_queue_backend(o);
  queue::NewItem n;
  n.item_id = "chain-20261201T000000Z-ffffff";
  n.task_id = "chain";
  n.pack = "low";
  n.contract_path = "/c/chain.json";
  n.repo = "/repo";
  ASSERT_EQ(q->submit(n).kind, queue::SubmitOutcome::Kind::queued);

  EXPECT_EQ(chain::sweep_unqueued_chains(root.path(), q->list()->state, std::chrono::minutes(10)), 2u);
  EXPECT_FALSE(fs::exists(torn));
  EXPECT_FALSE(fs::exists(untaken));
  EXPECT_TRUE(fs::exists(writing)) << "a submission under way is never touched";
  EXPECT_TRUE(fs::exists(young));
  EXPECT_TRUE(fs::exists(sealed)) << "its chain has a bundle";
  EXPECT_TRUE(fs::exists(queued)) << "the queue holds its item";
  EXPECT_TRUE(fs::exists(not_a_run)) << "only a folder holding its own chain record goes";
  EXPECT_TRUE(fs::exists(other));
}

}  // namespace
}  // namespace cp::test
