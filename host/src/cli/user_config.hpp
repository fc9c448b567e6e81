// The user's defaults: $XDG_CONFIG_HOME/cp-host/config.json (else ~/.config/cp-host/config.json), read
// once at start. Options and environment variables win over it.
//   {"server": "http://127.0.0.1:8787", "token_file": "~/.config/cp-host/token", "colour": "auto"}
#pragma once

#include <filesystem>
#include <string>

namespace cp::cli {

struct UserConfig {
  std::filesystem::path file;  // where it was looked for
  std::string server;          // the serve the remote-capable commands talk to ("" for local)
  std::string token_file;      // a file holding the bearer token for `server` ('~/' is the home folder)
  std::string colour;          // auto | always | never ("" for auto)
  std::string error;           // why the file was not used, when it exists but is wrong
};

// Reads the config file; a missing file is no config, a wrong one is `error` (nothing of it used).
UserConfig load_user_config();

}  // namespace cp::cli
