// `cp-host reindex`: rebuilds serve's run index (the catalogue's persistent index, run_index_file.hpp) from
// the bundles alone, reading every manifest, and writes it in place. For when the index is suspected, after
// bundles were restored or moved by hand, or to warm a root before serve's first start. serve never needs
// it: a missing or damaged index is rebuilt on start the same way.
#include "cli/commands.hpp"
#include "core/runtime_paths.hpp"
#include "serve/run_catalog.hpp"
#include "serve/serve_lock.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

namespace cp::cli {

namespace {

constexpr int kBusy = 10;  // a serve holds this root: it owns the index

struct ReindexOpts {
  bool json = false;
};

int run_reindex(const Globals& g, const ReindexOpts& o) {
  const std::filesystem::path root = std::filesystem::weakly_canonical(std::filesystem::absolute(g.root));
  std::error_code ec;
  std::filesystem::create_directories(core::runtime_dir(root), ec);
  // serve saves the index it holds in memory: a rebuild under a running serve would be overwritten.
  auto lock = serve::ServeLock::take(root);
  if (!lock) {
    std::cerr << "cp-host reindex: a cp-host serve holds " << root.string() << serve::ServeLock::holder(root)
              << "; stop it first (it rebuilds a missing index itself on start)\n";
    return kBusy;
  }
  serve::CatalogIndex index;
  index.file = core::run_index_file(root);
  // Not start(): the old index is never read, every bundle is.
  serve::RunCatalog catalog(root, index);
  auto t0 = std::chrono::steady_clock::now();
  catalog.refresh();
  try {
    catalog.save_index();
  } catch (const std::exception& e) {
    std::cerr << "cp-host reindex: the index could not be written: " << e.what() << "\n";
    return kInternal;
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  if (o.json) {
    std::cout << nlohmann::json{{"runs", catalog.size()}, {"index", index.file.string()}, {"ms", ms}}.dump(2)
              << "\n";
  } else {
    std::cout << "indexed " << catalog.size() << " runs in " << ms << " ms: " << index.file.string() << "\n";
  }
  return kOk;
}

}  // namespace

void add_reindex(CLI::App& app, Globals& g, Runner& run) {
  auto o = std::make_shared<ReindexOpts>();
  auto* c = app.add_subcommand(
      "reindex",
      "Rebuild serve's run index (.runtime-cache/cortexpilot/index/runs.idx) from the run bundles alone, "
      "reading every manifest. serve starts from that index and rebuilds it by itself when it is missing or "
      "damaged; use this after restoring bundles by hand, or to prepare a large root before serve starts. "
      "Exit codes: 0 written, 3 it could not be written, 10 a serve holds the root (stop it first)");
  c->add_flag("--json", o->json, "Print {runs, index, ms} as JSON");
  c->callback([&g, &run, o] { run = [&g, o] { return run_reindex(g, *o); }; });
}

}  // namespace cp::cli
