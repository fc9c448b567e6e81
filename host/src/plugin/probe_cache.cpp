#include "plugin/probe_cache.hpp"

#include "core/clock.hpp"
#include "plugin/probe_call.hpp"

#include <algorithm>

namespace cp::plugin {

ProbeCache::Answer ProbeCache::get(const PluginInfo& info) {
  std::shared_ptr<Slot> slot;
  {
    std::lock_guard<std::mutex> l(mu_);
    // By library as well as id: a plugin of the same id from another library is another probe.
    auto& s = slots_[info.library_path.string() + "\n" + info.id];
    if (!s) s = std::make_shared<Slot>();
    slot = s;
  }
  std::lock_guard<std::mutex> probing(slot->probing);
  int64_t now = core::now_ms();
  if (slot->have && now < slot->answer.expires_at_ms) {
    Answer a = slot->answer;
    a.cached = true;
    return a;
  }
  Answer a;
  a.result = call_probe(info);
  a.probed_at_ms = core::now_ms();
  int64_t ttl = a.result.contains("ttl_seconds") && a.result["ttl_seconds"].is_number_integer()
                    ? a.result["ttl_seconds"].get<int64_t>()
                    : 0;
  // At most a day: a probe's word on how long it holds is taken, within reason.
  ttl = std::clamp<int64_t>(ttl, floor_.count(), 24 * 3600);
  a.expires_at_ms = a.probed_at_ms + ttl * 1000;
  slot->answer = a;
  slot->have = true;
  return a;
}

}  // namespace cp::plugin
