#include "serve/verify_cache.hpp"

#include "store/bundle_verify.hpp"
#include "store/host_key.hpp"

namespace cp::serve {

using nlohmann::json;

json VerifyCache::check(const std::filesystem::path& bundle) {
  const std::string id = bundle.filename().string();
  const std::string fp = store::bundle_fingerprint(bundle);
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(id);
    if (it != cache_.end() && it->second.fingerprint == fp) return it->second.result;
  }
  store::KeyRing keys;
  try {
    keys = store::KeyRing::of_dir(store::key_dir());
  } catch (const store::KeyError&) {
  }
  store::BundleCheck c = store::verify_settled(bundle, keys);
  json r{{"state", store::state_name(c.state)}, {"ok", c.ok()}, {"problems", c.problems}};
  if (!c.key_id.empty()) r["key_id"] = c.key_id;
  // A live run changes with every event: only a settled answer is worth keeping.
  if (c.state != store::BundleCheck::State::live) {
    std::lock_guard lock(mu_);
    if (cache_.size() > 100000) cache_.clear();  // a bound; entries are rebuilt on demand
    cache_[id] = {fp, r};
  }
  return r;
}

}  // namespace cp::serve
