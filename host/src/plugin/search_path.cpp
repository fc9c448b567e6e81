#include "plugin/search_path.hpp"

#include <algorithm>
#include <string>
#include <system_error>

namespace cp::plugin {

namespace fs = std::filesystem;

std::vector<fs::path> split_search_path(const fs::path& joined) {
  std::vector<fs::path> out;
  const std::string s = joined.string();
  for (size_t at = 0; at <= s.size();) {
    size_t end = s.find(':', at);
    if (end == std::string::npos) end = s.size();
    if (end > at) out.emplace_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

fs::path join_search_path(const std::vector<fs::path>& folders) {
  std::vector<fs::path> seen;
  std::string joined;
  for (const auto& f : folders) {
    // The same folder twice (the build tree's own plugins named again by --plugins) is loaded once.
    std::error_code ec;
    fs::path key = fs::weakly_canonical(f, ec);
    if (ec) key = f.lexically_normal();
    if (f.empty() || std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    joined += (joined.empty() ? "" : ":") + f.string();
  }
  return joined;
}

fs::path absolute_search_path(const fs::path& joined) {
  std::vector<fs::path> folders = split_search_path(joined);
  for (auto& f : folders) {
    std::error_code ec;
    fs::path a = fs::absolute(f, ec);
    if (!ec) f = a;
  }
  return join_search_path(folders);
}

std::vector<fs::path> relative_folders(const fs::path& joined) {
  std::vector<fs::path> out;
  for (auto& f : split_search_path(joined))
    if (f.is_relative()) out.push_back(std::move(f));
  return out;
}

bool any_folder_exists(const fs::path& joined) {
  std::error_code ec;
  for (const auto& f : split_search_path(joined))
    if (fs::is_directory(f, ec)) return true;
  return false;
}

void load_search_path(Registry& reg, const fs::path& joined, const PluginPolicy& policy) {
  const std::vector<fs::path> folders = split_search_path(joined);
  if (folders.empty()) return reg.load_directory(joined, policy);  // refused there as missing
  for (const auto& f : folders) reg.load_directory(f, policy);
}

}  // namespace cp::plugin
