#include "log/logger.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace cp::log {
namespace {

spdlog::logger& console() {
  static auto logger = [] {
    auto l = spdlog::stderr_color_mt("cp-host");
    l->set_pattern("%^%l%$: %v");
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return *logger;
}

}  // namespace

void set_level(Level level) {
  static const spdlog::level::level_enum map[] = {
      spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err, spdlog::level::off};
  console().set_level(map[static_cast<int>(level)]);
}

void debug(const std::string& m) {
  console().debug(m);
}
void info(const std::string& m) {
  console().info(m);
}
void warn(const std::string& m) {
  console().warn(m);
}
void error(const std::string& m) {
  console().error(m);
}

}  // namespace cp::log
