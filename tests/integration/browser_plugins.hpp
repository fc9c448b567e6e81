// The plugin folder for tests that need the `browser` runner loaded (validating or previewing browser
// contracts): the shipped folder when the tree builds the runner, else a folder of links to every shipped
// plugin plus the test stand-in (tests/plugins/browser_stub/), made once per test process.
#pragma once

#include "unit/test_support.hpp"

#include <filesystem>
#include <string>

namespace cp::test {

inline std::string browser_plugin_dir() {
  const std::string stub = CP_BROWSER_STUB;
  if (stub.empty()) return CP_PLUGIN_DIR;
  static TempDir farm;
  static const bool made = [&] {
    for (const auto& e : std::filesystem::directory_iterator(CP_PLUGIN_DIR))
      if (e.path().extension() == ".so")
        std::filesystem::create_symlink(e.path(), farm / e.path().filename().string());
    std::filesystem::path s(stub);
    std::filesystem::create_symlink(s, farm / s.filename().string());
    return true;
  }();
  (void)made;
  return farm.path().string();
}

}  // namespace cp::test
