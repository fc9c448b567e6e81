#include "plugin/installed_folder.hpp"

#include "core/version.hpp"

#include <system_error>

namespace cp::plugin {

namespace fs = std::filesystem;

const fs::path& installed_plugin_folder() {
  static const fs::path folder = [] {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec || exe.empty()) return fs::path();
    const fs::path prefix = exe.parent_path().parent_path();
    for (const fs::path& p :
         {prefix / "plugins", prefix / CP_HOST_PLUGIN_SUBDIR, prefix / "lib/cp-host/plugins"})
      if (fs::is_directory(p, ec)) {
        fs::path canonical = fs::canonical(p, ec);
        return ec ? fs::path() : canonical;
      }
    return fs::path();
  }();
  return folder;
}

bool in_installed_folder(const fs::path& library) {
  const fs::path& folder = installed_plugin_folder();
  if (folder.empty()) return false;
  std::error_code ec;
  const fs::path file = fs::canonical(library, ec);
  return !ec && file.parent_path() == folder;
}

}  // namespace cp::plugin
