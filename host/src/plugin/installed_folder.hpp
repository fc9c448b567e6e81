// The folder of the plugins installed with this cp-host: beside the binary in a build tree
// (<build>/plugins), or under the install prefix's library folder (<prefix>/lib/<multiarch>/cp-host/plugins).
// It is where the plugin search path starts by default, and what makes a library first-party: only a `cp-*`
// library found there runs in process by default (registry.cpp); one that merely calls itself `cp-*`
// elsewhere runs isolated.
#pragma once

#include <filesystem>

namespace cp::plugin {

// The folder, canonical; empty when this process's binary cannot be found or no such folder exists.
const std::filesystem::path& installed_plugin_folder();

// True when `library` (a symbolic link followed to its file) lies directly in installed_plugin_folder().
bool in_installed_folder(const std::filesystem::path& library);

}  // namespace cp::plugin
