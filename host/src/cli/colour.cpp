#include "cli/colour.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace cp::cli {

namespace {
std::string& preference() {
  static std::string p = "auto";
  return p;
}
}  // namespace

void set_colour_preference(const std::string& p) {
  preference() = p.empty() ? "auto" : p;
}

bool colour_on(int fd) {
  if (const char* no = std::getenv("NO_COLOR"); no && *no) return false;
  if (preference() == "never") return false;
  if (preference() == "always") return true;
  if (const char* force = std::getenv("CLICOLOR_FORCE"); force && *force && std::strcmp(force, "0") != 0)
    return true;
  if (const char* term = std::getenv("TERM"); term && std::strcmp(term, "dumb") == 0) return false;
  return ::isatty(fd) == 1;
}

std::string paint(std::string_view text, Colour c, int fd) {
  if (!colour_on(fd)) return std::string(text);
  const char* code = c == Colour::green ? "32" : c == Colour::red ? "31" : c == Colour::yellow ? "33" : "1";
  return std::string("\033[") + code + "m" + std::string(text) + "\033[0m";
}

std::string paint_verdict(std::string_view verdict, int fd) {
  if (verdict == "success" || verdict == "pass") return paint(verdict, Colour::green, fd);
  if (verdict == "failure" || verdict == "denied" || verdict == "error" || verdict == "timeout" ||
      verdict == "fail")
    return paint(verdict, Colour::red, fd);
  return paint(verdict, Colour::yellow, fd);
}

}  // namespace cp::cli
