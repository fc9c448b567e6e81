#include "core/clock.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace cp::core {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string now_utc_iso() {
  return iso_from_ms(now_ms());
}

std::string iso_from_ms(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

int64_t parse_iso_ms(const std::string& iso) {
  int y, mo, d, h, mi, s;
  int consumed = 0;
  if (std::sscanf(iso.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) != 6)
    return -1;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  size_t i = static_cast<size_t>(consumed);
  if (i < iso.size() && iso[i] == '.') {
    int64_t frac = 0, scale = 100;
    for (++i; i < iso.size() && iso[i] >= '0' && iso[i] <= '9'; ++i) {
      frac += (iso[i] - '0') * scale;
      scale /= 10;
    }
    ms += frac;
  }
  if (i != iso.size() - 1 || iso[i] != 'Z') return -1;
  return ms;
}

}  // namespace cp::core
