// Answers of a read route kept by their request, each valid for one generation of what it was built from
// (the run catalogue's, say): while nothing changed, the same query gets the same bytes without a second
// walk, copy, redaction and dump. Bounded; when full, it starts over.
#pragma once

#include "serve/sealed_answers.hpp"

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cp::serve {

class AnswerMemo {
 public:
  explicit AnswerMemo(size_t max_answers = 512) : max_(max_answers) {}

  // The answer to `key` at `generation`: kept, or built by build() (without the lock) and kept when it
  // says it may be (an error answer is not). Thread-safe.
  CachedAnswer get(const std::string& key, uint64_t generation,
                   const std::function<std::pair<CachedAnswer, bool>()>& build) {
    {
      std::lock_guard lock(mu_);
      auto it = kept_.find(key);
      if (it != kept_.end() && it->second.first == generation) return it->second.second;
    }
    auto [answer, keep] = build();
    if (!keep) return answer;
    std::lock_guard lock(mu_);
    if (kept_.size() >= max_) kept_.clear();
    kept_[key] = {generation, answer};
    return answer;
  }

 private:
  size_t max_;
  std::mutex mu_;
  std::unordered_map<std::string, std::pair<uint64_t, CachedAnswer>> kept_;
};

}  // namespace cp::serve
