#include "cli/commands.hpp"

#include <cstdlib>
#include <system_error>

namespace cp::cli {

std::filesystem::path default_plugins_dir() {
  if (const char* env = std::getenv("CP_HOST_PLUGINS"); env && *env) return env;
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "plugins";
  std::filesystem::path bin = exe.parent_path();
  for (auto candidate : {bin.parent_path() / "plugins", bin.parent_path() / "lib" / "cp-host" / "plugins"})
    if (std::filesystem::is_directory(candidate, ec)) return candidate;
  return bin.parent_path() / "plugins";
}

}  // namespace cp::cli
