// Prometheus text exposition for GET /metrics: request counts and a latency histogram recorded here,
// plus gauges read at scrape time from the run catalog, the queue and the scheduler.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace cp::serve {

class Metrics {
 public:
  // Thread-safe. `route` is the route pattern (not the raw path), so labels stay few.
  void record(const std::string& method, const std::string& route, int status, double seconds);

  // The request series, in exposition format.
  std::string render_requests() const;

  static constexpr std::array<double, 10> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                   0.025,  0.05,  0.1,    0.5,   2.5};

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, long long> requests_;
  std::array<long long, kBuckets.size() + 1> buckets_{};  // the last is +Inf
  double sum_ = 0;
  long long count_ = 0;
};

// A label value escaped for the exposition format.
std::string prom_label(const std::string& v);

}  // namespace cp::serve
