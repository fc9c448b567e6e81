// A run's path locks end with its seal, however it is sealed: the engine's own seal, recovery's seal of a
// dead run, a re-seal after a decision. A seal observer (store/after_seal.hpp) releases the locks of the
// queue attempt the manifest names, so a conflicting item may start as soon as the run is over, without
// waiting for the scheduler to see its process exit.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

namespace cp::queue {

// Releases the locks still held by the attempt `manifest` names in its `queue` section (nothing for a run
// the queue did not start, or whose attempt holds none). Throws when the queue cannot be written.
void release_locks_of_sealed_run(const std::filesystem::path& root, const nlohmann::json& manifest);

// Installs release_locks_of_sealed_run as a seal observer, for the rest of the process (cli/main.cpp).
void release_path_locks_on_seal();

}  // namespace cp::queue
