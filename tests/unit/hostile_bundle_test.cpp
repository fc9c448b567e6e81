// A run's bundle is hostile input to the host: a folder of its scratch swapped for a link while serve reads
// an artifact, a manifest planted beside a live marker naming a path for its run id. Each test proves the
// bad thing did not happen (no byte from outside the bundle served, the victim file still there).
#include "core/runtime_paths.hpp"
#include "queue/queue_service.hpp"
#include "run/recovery.hpp"
#include "serve/api.hpp"
#include "serve/metrics.hpp"
#include "serve/run_catalog.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <thread>

namespace cp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// GET /api/runs/{id}/artifacts/{path} checks each segment, then opens the file beneath artifacts/ without
// following any link: an agent that swaps a folder of its scratch for a link to outside (a key folder)
// between the check and the open gets nothing.
TEST(HostileBundle, ArtifactReadCannotBeRacedOutOfTheBundle) {
  test::TempDir root;
  const std::string id = "r-20250101T000000Z-abcdef";
  fs::path scratch = core::runs_dir(root.path()) / id / "artifacts" / "scratch";
  test::write_file(scratch / "d" / "f.txt", "harmless");
  test::write_file(root / "outside" / "f.txt", "OUTSIDE-THE-BUNDLE");  // stands for a host key file
  serve::TokenStore tokens;
  serve::RunCatalog catalog(root.path());
  queue::QueueService q(root.path(), nullptr);
  serve::Metrics metrics;
  serve::Api api{serve::ApiConfig{root.path(),
                                  {},
                                  {},
                                  /*open_reads=*/true,
                                  "0",
                                  "{}",
                                  {},
                                  {},
                                  std::chrono::hours(8),
                                  false,
                                  false,
                                  {}},
                 tokens,
                 catalog,
                 q,
                 nullptr,
                 nullptr,
                 metrics};

  // The hostile agent: flips scratch/d between its real folder and a symlink to outside/.
  std::atomic<bool> stop{false};
  std::thread agent([&] {
    std::error_code ec;
    while (!stop) {
      fs::rename(scratch / "d", scratch / "d.real", ec);
      fs::create_directory_symlink(root / "outside", scratch / "d", ec);
      fs::remove(scratch / "d", ec);
      fs::rename(scratch / "d.real", scratch / "d", ec);
    }
  });
  serve::ApiRequest req;
  req.method = "GET";
  req.path = "/api/runs/" + id + "/artifacts/scratch/d/f.txt";
  bool leaked = false;
  for (int i = 0; i < 20000 && !leaked; ++i)
    leaked = api.handle(req).body.find("OUTSIDE-THE-BUNDLE") != std::string::npos;
  stop = true;
  agent.join();
  EXPECT_FALSE(leaked) << "an anonymous/viewer request read a file outside the run's bundle";
}

// Recovery of a bundle that says sealed but is still marked live does what follows a seal only for a bundle
// that verifies as the one its folder names: a planted manifest whose run_id is a path removes nothing.
TEST(HostileBundle, RecoveryNeverRemovesAFileNamedByAManifestRunId) {
  test::TempDir root;
  const std::string id = "planted-run";
  fs::path victim = root / "victim.txt";
  test::write_file(victim, "precious");
  fs::create_directories(core::awaiting_dir(root.path()));  // exists once any run awaited approval
  test::write_file(core::bundle_dir(root.path(), id) / "manifest.json",
                   json{{"schema_version", 1},
                        {"run_id", "../../../../victim.txt"},
                        {"status", "sealed"},
                        {"verdict", "success"}}
                       .dump());
  test::write_file(core::live_marker(root.path(), id), "");
  (void)run::recover(root.path(), false);
  EXPECT_TRUE(fs::exists(victim)) << "recovery deleted " << victim << " named by a manifest's run_id";
}

}  // namespace
}  // namespace cp
