// The plugin search path: the folders plugins load from, first id wins. Written as PATH is, folders joined
// by ':', so that one value travels through every layer (and to the children serve starts) unchanged; a
// folder whose name holds ':' cannot be on it.
#pragma once

#include "plugin/registry.hpp"

#include <filesystem>
#include <vector>

namespace cp::plugin {

// The folders of `joined`, in order, empty entries dropped.
std::vector<std::filesystem::path> split_search_path(const std::filesystem::path& joined);

// `folders` joined by ':', each folder once (the first time it appears).
std::filesystem::path join_search_path(const std::vector<std::filesystem::path>& folders);

// Every folder made absolute against the current folder, for a process that will change it.
std::filesystem::path absolute_search_path(const std::filesystem::path& joined);

// The entries of `joined` (as given: --plugins, CP_HOST_PLUGINS) that are relative paths. Such an entry names
// a different folder from every current folder; cp-host makes it absolute at start, and doctor warns of it.
std::vector<std::filesystem::path> relative_folders(const std::filesystem::path& joined);

// True when at least one folder of the path exists.
bool any_folder_exists(const std::filesystem::path& joined);

// Loads each folder in order (Registry::load_directory). A plugin id met again further down the path is
// refused as shadowed, naming the file that provides it: what `cp-host plugins list` reports.
void load_search_path(Registry& reg, const std::filesystem::path& joined, const PluginPolicy& policy = {});

}  // namespace cp::plugin
