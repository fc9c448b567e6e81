// `cp-host help --man`: the manual page, in roff, generated from the command tree itself, so that it lists
// exactly the commands and options this cp-host has. The build writes it to man/cp-host.1 and the package
// installs it; `man ./build/man/cp-host.1` reads it in place.
#include "cli/commands.hpp"
#include "core/version.hpp"

#include <CLI/CLI.hpp>

#include <sstream>

namespace cp::cli {

namespace {

// roff treats a leading '.' or '\'' as a request and '\' as an escape; '-' is a hyphen unless escaped.
std::string roff(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

std::string option_names(const CLI::Option& o) {
  std::string names;
  for (const auto& n : o.get_snames()) names += (names.empty() ? "-" : ", -") + n;
  for (const auto& n : o.get_lnames()) names += (names.empty() ? "--" : ", --") + n;
  if (names.empty()) names = o.get_name();  // a positional argument
  return names;
}

void options_of(const CLI::App& app, std::ostringstream& s) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_lnames().empty() && o->get_snames().empty() && o->get_name().empty()) continue;
    if (o->get_name() == "--help" || o->get_name() == "-h,--help") continue;
    s << ".TP\n.B " << roff(option_names(*o)) << "\n" << roff(o->get_description()) << "\n";
  }
}

void commands_of(const CLI::App& app, const std::string& path, std::ostringstream& s) {
  for (const CLI::App* c : app.get_subcommands([](const CLI::App* c) { return !c->get_name().empty(); })) {
    const std::string here = path + " " + c->get_name();
    s << ".SS " << roff(here) << "\n" << roff(c->get_description()) << "\n";
    if (!c->get_options().empty()) {
      s << ".RS\n";
      options_of(*c, s);
      s << ".RE\n";
    }
    commands_of(*c, here, s);
  }
}

}  // namespace

std::string man_page(const CLI::App& app) {
  std::ostringstream s;
  s << ".TH CP\\-HOST 1 \"\" \"cp-host " << CP_HOST_VERSION << "\" \"cp-host manual\"\n"
    << ".SH NAME\ncp\\-host \\- a governed control plane for AI coding agents\n"
    << ".SH SYNOPSIS\n.B cp\\-host\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n"
    << ".SH DESCRIPTION\n"
    << roff(app.get_description()) << "\n"
    << ".SH GLOBAL OPTIONS\nThey may also follow the command.\n";
  options_of(app, s);
  s << ".SH COMMANDS\n";
  commands_of(app, "cp-host", s);
  s << ".SH ENVIRONMENT\n"
       ".TP\n.B CP_HOST_ROOT\nThe project root when \\-\\-root is not given.\n"
       ".TP\n.B CP_HOST_PLUGINS\nThe plugin search path, folders joined by ':'.\n"
       ".TP\n.B CP_HOST_KEY_DIR\nThe folder of the host key that signs run seals.\n"
       ".TP\n.B NO_COLOR\nWhen set, no colour in any output.\n"
       ".SH EXIT STATUS\n0 success; 1 the input was checked and is wrong, or a lookup found nothing; 2 the "
       "command line or a path is wrong; 3 cp-host itself failed; other codes are a command's own, listed in "
       "its documentation.\n"
       ".SH SEE ALSO\n.BR git (1)\n";
  return s.str();
}

}  // namespace cp::cli
