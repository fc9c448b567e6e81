// Host logging. spdlog stays inside logger.cpp; callers pass finished strings.
#pragma once

#include <string>

namespace cp::log {

enum class Level { debug, info, warn, error, off };

// Console logging to stderr, for interactive use. Default level: warn (so command output stays clean).
void set_level(Level level);

void debug(const std::string& message);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);

}  // namespace cp::log
