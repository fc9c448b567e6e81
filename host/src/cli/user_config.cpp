#include "cli/user_config.hpp"

#include "core/json_file.hpp"

#include <cstdlib>
#include <system_error>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path config_file() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x == '/')
    return fs::path(x) / "cp-host/config.json";
  if (const char* h = std::getenv("HOME"); h && *h == '/') return fs::path(h) / ".config/cp-host/config.json";
  return {};
}

std::string expand_home(const std::string& p) {
  if (p.rfind("~/", 0) == 0)
    if (const char* h = std::getenv("HOME"); h && *h == '/') return std::string(h) + p.substr(1);
  return p;
}

}  // namespace

UserConfig load_user_config() {
  UserConfig c;
  c.file = config_file();
  std::error_code ec;
  if (c.file.empty() || !fs::exists(c.file, ec)) return c;
  const json doc = core::read_json_file(c.file);
  auto wrong = [&](const std::string& why) {
    UserConfig bad;
    bad.file = c.file;
    bad.error = c.file.string() + ": " + why + "; the file is ignored";
    return bad;
  };
  if (!doc.is_object()) return wrong("not a JSON object (or unreadable, or over the size limits)");
  for (const auto& [key, value] : doc.items()) {
    if (key != "server" && key != "token_file" && key != "colour")
      return wrong("unknown key /" + key + " (known: server, token_file, colour)");
    if (!value.is_string()) return wrong("/" + key + " must be a string");
  }
  c.server = doc.value("server", "");
  c.token_file = expand_home(doc.value("token_file", ""));
  c.colour = doc.value("colour", "");
  if (!c.colour.empty() && c.colour != "auto" && c.colour != "always" && c.colour != "never")
    return wrong("/colour must be auto, always or never");
  return c;
}

}  // namespace cp::cli
