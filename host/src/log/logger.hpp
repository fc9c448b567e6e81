// Host logging. spdlog stays inside logger.cpp; callers pass finished strings.
#pragma once

#include <string>

namespace cp::log {

enum class Level { debug, info, warn, error, off };

// Console logging to stderr, for interactive use. Default level: warn (so command output stays clean).
void set_level(Level level);
// text (default): "warn: message"; json: one log_event.v2 envelope per line, for log collectors.
enum class ConsoleFormat { text, json };
void set_console_format(ConsoleFormat f);

void debug(const std::string& message);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);
// Each of these also goes to the `runtime` lane (errors to `error` too) once log lanes are open.

}  // namespace cp::log
