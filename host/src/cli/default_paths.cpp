// The plugin search path when --plugins is not given: $CP_HOST_PLUGINS, else the installed plugins and the
// user's own (docs/cli.md, "Plugins").
#include "cli/commands.hpp"
#include "core/version.hpp"
#include "plugin/search_path.hpp"

#include <cstdlib>
#include <iostream>
#include <string>
#include <system_error>

namespace cp::cli {

namespace fs = std::filesystem;

namespace {

// The folders searched by default, those that exist: the plugins beside this binary (a build tree, or an
// install prefix's lib folder), then $XDG_DATA_HOME/cp-host/plugins (a user's third-party plugins).
std::vector<fs::path> default_folders() {
  std::vector<fs::path> out;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path prefix = ec ? fs::path() : exe.parent_path().parent_path();
  if (!prefix.empty())
    for (const fs::path& p :
         {prefix / "plugins", prefix / CP_HOST_PLUGIN_SUBDIR, prefix / "lib/cp-host/plugins"})
      if (fs::is_directory(p, ec)) {
        out.push_back(p);
        break;
      }
  fs::path data;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x == '/')
    data = x;
  else if (const char* home = std::getenv("HOME"); home && *home == '/')
    data = fs::path(home) / ".local/share";
  if (!data.empty() && fs::is_directory(data / "cp-host/plugins", ec))
    out.push_back(data / "cp-host/plugins");
  // Nothing installed: the folder an error should name — never a relative one, which would load whatever
  // `plugins/` the current folder holds.
  if (out.empty())
    out.push_back(prefix.empty() ? fs::path("/usr") / CP_HOST_PLUGIN_SUBDIR : prefix / "plugins");
  return out;
}

}  // namespace

namespace {

// A relative folder would load code from wherever the command happens to run: it is made absolute against
// the current folder now, and said so.
fs::path absolute_folders(std::vector<fs::path> folders) {
  for (auto& f : folders)
    if (f.is_relative()) {
      std::error_code ec;
      fs::path abs = fs::absolute(f, ec);
      if (ec) continue;
      std::cerr << "cp-host: warning: plugin folder '" << f.string() << "' is relative; resolved to "
                << abs.lexically_normal().string() << "\n";
      f = abs.lexically_normal();
    }
  return plugin::join_search_path(folders);
}

}  // namespace

fs::path plugin_search_path(const std::vector<std::string>& given) {
  std::vector<fs::path> folders;
  for (const auto& g : given)
    for (const auto& f : plugin::split_search_path(g)) folders.push_back(f);
  if (!folders.empty()) return absolute_folders(folders);
  const char* env = std::getenv("CP_HOST_PLUGINS");
  if (!env || !*env) return plugin::join_search_path(default_folders());
  // As MANPATH reads it: an empty entry (a leading, trailing or doubled ':') stands for the default folders.
  const std::string s = env;
  for (size_t at = 0; at <= s.size();) {
    size_t end = s.find(':', at);
    if (end == std::string::npos) end = s.size();
    if (end == at)
      for (auto& d : default_folders()) folders.push_back(d);
    else
      folders.emplace_back(s.substr(at, end - at));
    at = end + 1;
  }
  return absolute_folders(folders);
}

}  // namespace cp::cli
