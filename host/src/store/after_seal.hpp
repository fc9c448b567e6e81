// What follows every seal, written once: the bundle's markers and the observers that react to a sealed run.
// Every way a run is sealed — the engine's first seal, a chain's, an approval or evidence decision's
// re-seal, recovery's seal and the finishing of a seal a crash cut short — ends here, so none of them
// repeats the rule, and the layers that seal (run, chain, control) never call upward to tell a workflow
// case: the program's top layer installs that reaction as an observer (cli/main.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace cp::store {

class EventLog;
class KeyRing;

// Called after a run's manifest was sealed (or re-sealed) with the runtime root and the new manifest.
using SealObserver = std::function<void(const std::filesystem::path& root, const nlohmann::json& manifest)>;

// Adds an observer for the rest of the process. Not thread-safe against concurrent seals: install at start.
void add_seal_observer(SealObserver observer);

// runs/.awaiting/<run_id>, written before the seal event of a run that starts waiting for approval, so
// listings find the run however the seal is cut short. Throws std::system_error when it cannot be written.
void mark_awaiting(const std::filesystem::path& root, const std::string& run_id);

// After a seal: the awaiting marker goes unless the manifest still waits, the live marker goes when
// `clear_live` (recovery keeps it while a run's processes survive), and every observer is told. Never
// throws: a marker or observer that fails is logged, and the bundle stays the truth.
void after_seal(const std::filesystem::path& root, const nlohmann::json& manifest, bool clear_live = true);

// Finishes a seal a crash cut short (store::complete_seal over `log`, with `keys`), then does what follows a
// seal, the live marker kept (its owner decides). The one "finish from the log" path, for Bundle::open and
// recovery. Returns true when the bundle changed; throws std::system_error when a write fails.
bool finish_cut_seal(const std::filesystem::path& root, const std::filesystem::path& dir, EventLog& log,
                     const KeyRing& keys);

}  // namespace cp::store
