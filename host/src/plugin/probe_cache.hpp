// Probe answers kept for their lifetime: a probe says how long its answer holds (ttl_seconds), so a reader
// that asks again within it gets the same answer without the probe running again. Used by serve's
// GET /api/probes, where any viewer's page load may ask: an answer is kept at least `floor` (an error
// answer has ttl 0, and a page reloaded in a loop must not start a probe each time), and one plugin is
// probed by one caller at a time (the others wait for its answer). Thread-safe.
#pragma once

#include "plugin/plugin_info.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace cp::plugin {

class ProbeCache {
 public:
  explicit ProbeCache(std::chrono::seconds floor = std::chrono::seconds(10)) : floor_(floor) {}

  struct Answer {
    nlohmann::json result;      // the probe's answer (schemas/probe_result.schema.json; call_probe)
    int64_t probed_at_ms = 0;   // when the probe ran
    int64_t expires_at_ms = 0;  // until then it is answered from here
    bool cached = false;        // this call did not run the probe
  };

  // The answer of probe `info`: the kept one while it holds, else a fresh call_probe.
  Answer get(const PluginInfo& info);

 private:
  struct Slot {
    std::mutex probing;  // held while the probe runs
    Answer answer;
    bool have = false;
  };
  std::chrono::seconds floor_;
  std::mutex mu_;  // guards slots_
  std::map<std::string, std::shared_ptr<Slot>> slots_;
};

}  // namespace cp::plugin
