#include "store/after_seal.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "log/logger.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_seal.hpp"

#include <system_error>
#include <vector>

namespace cp::store {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<SealObserver>& observers() {
  static std::vector<SealObserver> list;
  return list;
}

}  // namespace

void add_seal_observer(SealObserver observer) {
  observers().push_back(std::move(observer));
}

void mark_awaiting(const fs::path& root, const std::string& run_id) {
  fs::path marker = core::awaiting_marker(root, run_id);
  fs::create_directories(marker.parent_path());
  write_atomic(marker, "");
}

void after_seal(const fs::path& root, const json& manifest, bool clear_live) {
  if (!manifest.is_object() || !manifest.contains("run_id") || !manifest["run_id"].is_string()) return;
  const std::string run_id = manifest["run_id"].get<std::string>();
  if (!valid_run_id(run_id)) return;  // a name that is no run's never becomes a path
  std::error_code ec;
  if (manifest.value("status", "") != "awaiting_approval")
    fs::remove(core::awaiting_marker(root, run_id), ec);
  if (clear_live) clear_live_marker(root, run_id);
  for (const auto& observe : observers()) {
    try {
      observe(root, manifest);
    } catch (const std::exception& e) {
      log::warn("after the seal of " + run_id + ": " + e.what());
    }
  }
}

bool finish_cut_seal(const fs::path& root, const fs::path& dir, EventLog& log, const KeyRing& keys) {
  if (!complete_seal(dir, log, keys)) return false;
  after_seal(root, core::read_json_file(dir / "manifest.json"), false);
  return true;
}

}  // namespace cp::store
