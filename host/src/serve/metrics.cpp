#include "serve/metrics.hpp"

#include <cstdio>
#include <sstream>

namespace cp::serve {

std::string prom_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Metrics::record(const std::string& method, const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> l(mu_);
  ++requests_[{method, route, status}];
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  ++buckets_[i];
  sum_ += seconds;
  ++count_;
}

std::string Metrics::render_requests() const {
  std::lock_guard<std::mutex> l(mu_);
  std::ostringstream o;
  o << "# HELP cp_http_requests_total API requests by method, route and status.\n"
    << "# TYPE cp_http_requests_total counter\n";
  for (const auto& [k, n] : requests_)
    o << "cp_http_requests_total{method=\"" << prom_label(std::get<0>(k)) << "\",route=\""
      << prom_label(std::get<1>(k)) << "\",code=\"" << std::get<2>(k) << "\"} " << n << "\n";
  o << "# HELP cp_http_request_duration_seconds Time from request parsed to response handed to the socket.\n"
    << "# TYPE cp_http_request_duration_seconds histogram\n";
  long long cum = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cum += buckets_[i];
    char le[32];
    std::snprintf(le, sizeof le, "%g", kBuckets[i]);
    o << "cp_http_request_duration_seconds_bucket{le=\"" << le << "\"} " << cum << "\n";
  }
  cum += buckets_[kBuckets.size()];
  o << "cp_http_request_duration_seconds_bucket{le=\"+Inf\"} " << cum << "\n"
    << "cp_http_request_duration_seconds_sum " << sum_ << "\n"
    << "cp_http_request_duration_seconds_count " << count_ << "\n";
  return o.str();
}

}  // namespace cp::serve
