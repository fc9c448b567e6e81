// Opening a plugin library and calling its entry point. Boost.DLL stays inside library.cpp.
#pragma once

#include <cortexpilot/plugin.h>

#include <filesystem>
#include <memory>
#include <string>

namespace cp::plugin {

struct OpenedLibrary {
  std::shared_ptr<void> handle;  // keeps the library mapped; empty on failure
  const cp_plugin_manifest* manifest = nullptr;
  std::string error;  // why it could not be opened, when handle is empty
};

// dlopen()s `path` (RTLD_LOCAL, RTLD_NOW), finds cp_plugin_entry and calls it.
OpenedLibrary open_library(const std::filesystem::path& path);

}  // namespace cp::plugin
