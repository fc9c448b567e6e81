// Other nodes' runs, kept here as local copies of what the shared store holds (db/run_store.hpp), so that
// this node lists, streams and serves every run whichever worker runs it, through the same catalogue, event
// streams and bundle readers as its own runs. A thread follows the store's change counter (woken by NOTIFY
// cp_runs, and every second regardless): for each changed run of another node it appends the new event
// lines to the copy's events.jsonl, exactly as stored (same bytes, same hash chain), writes the manifest,
// and once the run is sealed writes the bundle's files. A copy is marked in runs/.replicas/ (recovery
// leaves it alone: its run is not this node's to seal) and is a cache: retention may clear it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace cp::serve {

class RunReplicas {
 public:
  // `changed` is called (on the thread) with each run whose copy changed: the catalogue re-reads it.
  RunReplicas(std::filesystem::path root, std::string conninfo, std::string worker_id,
              std::function<void(const std::string&)> changed);
  ~RunReplicas();
  RunReplicas(const RunReplicas&) = delete;
  RunReplicas& operator=(const RunReplicas&) = delete;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace cp::serve
