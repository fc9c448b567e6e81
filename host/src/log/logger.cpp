#include "log/logger.hpp"

#include "log/log_lanes.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace cp::log {
namespace {

std::atomic<bool> g_json{false};

spdlog::logger& console() {
  static auto logger = [] {
    auto l = spdlog::stderr_color_mt("cp-host");
    l->set_pattern("%^%l%$: %v");
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return *logger;
}

void say(Level level, const std::string& m) {
  static const spdlog::level::level_enum map[] = {
      spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err, spdlog::level::off};
  Event e;
  e.level = level;
  e.message = m;
  console().log(map[static_cast<int>(level)], g_json ? envelope(e) : m);
  if (level != Level::debug) emit(e);
}

}  // namespace

void set_level(Level level) {
  static const spdlog::level::level_enum map[] = {
      spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err, spdlog::level::off};
  console().set_level(map[static_cast<int>(level)]);
}

void set_console_format(ConsoleFormat f) {
  g_json = f == ConsoleFormat::json;
  console().set_pattern(g_json ? "%v" : "%^%l%$: %v");
}

void debug(const std::string& m) {
  say(Level::debug, m);
}
void info(const std::string& m) {
  say(Level::info, m);
}
void warn(const std::string& m) {
  say(Level::warn, m);
}
void error(const std::string& m) {
  say(Level::error, m);
}

}  // namespace cp::log
