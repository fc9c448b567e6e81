#include "serve/sealed_answers.hpp"

#include "serve/verify_cache.hpp"
#include "store/bundle_verify.hpp"

namespace cp::serve {

// The watches: one set per kept answer, plus those of answers being built (at most one per request thread).
SealedAnswers::SealedAnswers(size_t max_runs) : max_(max_runs), watch_(max_runs + 256) {}

size_t SealedAnswers::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

bool SealedAnswers::drop_changed(const std::string& id) {
  bool all = false, hit = false;
  for (const auto& c : watch_.changed(all)) {
    entries_.erase(c);
    hit = hit || c == id;
  }
  if (all) entries_.clear();
  return hit || all;
}

void SealedAnswers::check_keys(std::chrono::steady_clock::time_point now) {
  if (now - keys_checked_ < kRecheck) return;
  keys_checked_ = now;
  std::string keys = host_keys_fingerprint();
  if (keys == keys_) return;
  keys_ = std::move(keys);
  for (const auto& [id, e] : entries_) watch_.forget(id);
  entries_.clear();
}

CachedAnswer SealedAnswers::get(const std::string& id, const std::filesystem::path& dir,
                                const std::function<std::pair<CachedAnswer, bool>()>& build) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    drop_changed(id);
    check_keys(now);
    auto it = entries_.find(id);
    if (it != entries_.end() && now - it->second.built >= VerifyCache::kReverify) {
      watch_.forget(id);  // built and verified again below
      entries_.erase(it);
      it = entries_.end();
    }
    if (it != entries_.end() && now - it->second.checked < kRecheck) return it->second.answer;
  }
  // Not kept, or due for its fingerprint check. The fingerprint is taken and the watch set before the
  // answer is built: a change made while it is built shows up as a changed fingerprint or an inotify event
  // below, and the answer is then not kept.
  const std::string fp = store::bundle_fingerprint(dir);
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.fingerprint == fp) {
      it->second.checked = now;
      return it->second.answer;
    }
    entries_.erase(id);
  }
  bool watched = watch_.watch(id, dir);
  auto [answer, settled] = build();
  if (!settled || !watched) {
    // Nothing kept for this run without its watch (another request may have kept an answer meanwhile).
    std::lock_guard lock(mu_);
    entries_.erase(id);
    watch_.forget(id);
    return answer;
  }
  const std::string after = store::bundle_fingerprint(dir);
  std::lock_guard lock(mu_);
  // A change while the answer was built: the watch is gone (changed() forgot it), and no answer is kept
  // for this run (one another request kept meanwhile would be left without its watch).
  if (drop_changed(id) || after != fp) {
    entries_.erase(id);
    watch_.forget(id);
    return answer;
  }
  if (entries_.size() >= max_) {  // room for it: any other answer goes (it is rebuilt when asked again)
    auto victim = entries_.begin();
    watch_.forget(victim->first);
    entries_.erase(victim);
  }
  entries_[id] = {answer, fp, now, now};
  return answer;
}

}  // namespace cp::serve
