#include "control/run_copy.hpp"

#include "core/runtime_paths.hpp"

#include <fstream>

namespace cp::control {

std::string copy_refusal(const std::filesystem::path& root, const std::string& run_id) {
  const auto marker = core::replica_marker(root, run_id);
  std::error_code ec;
  if (run_id.empty() || !std::filesystem::exists(marker, ec)) return "";
  std::string worker;
  std::ifstream in(marker);
  std::getline(in, worker);
  if (worker.size() > 128) worker.resize(128);
  return "run " + run_id + " ran on worker " + (worker.empty() ? "?" : "'" + worker + "'") +
         "; this node holds a copy from the shared store: decide on the node that ran it";
}

}  // namespace cp::control
