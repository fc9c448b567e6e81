// Colour in what cp-host prints for people: only on a terminal, never when NO_COLOR is set (no-color.org),
// and always when CLICOLOR_FORCE is (for pagers such as `less -R`); TERM=dumb has none.
#pragma once

#include <string>
#include <string_view>

namespace cp::cli {

enum class Colour { green, red, yellow, bold };

// Whether text written to `fd` (1 stdout, 2 stderr) is coloured, by the rules above.
bool colour_on(int fd);

// The user config's choice (auto, always, never): NO_COLOR still wins over "always".
void set_colour_preference(const std::string& preference);

// `text` in `c` when colour_on(fd), else `text` as it is.
std::string paint(std::string_view text, Colour c, int fd = 1);

// A verdict in its colour: success green; failure, denied, error, timeout red; the others yellow.
std::string paint_verdict(std::string_view verdict, int fd = 1);

}  // namespace cp::cli
