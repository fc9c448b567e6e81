#include "plugin/library.hpp"

#include "plugin/host_services.hpp"

#define BOOST_DLL_USE_STD_FS 1
#include <boost/dll/shared_library.hpp>

namespace cp::plugin {

OpenedLibrary open_library(const std::filesystem::path& path) {
  OpenedLibrary out;
  auto lib = std::make_shared<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec || !lib->is_loaded()) {
    out.error = "not a loadable shared library (" + ec.message() + ")";
    return out;
  }
  if (!lib->has(CP_PLUGIN_ENTRY_SYMBOL)) {
    out.error = std::string("no ") + CP_PLUGIN_ENTRY_SYMBOL +
                " symbol: not a cp-host plugin, or one built for another ABI major";
    return out;
  }
  auto entry = lib->get<cp_status(const cp_host_info*, const cp_plugin_manifest**, cp_error**)>(
      CP_PLUGIN_ENTRY_SYMBOL);
  CallContext ctx("loader");
  cp_host_info info{};
  info.struct_size = sizeof(info);
  info.abi_major = CP_PLUGIN_ABI_MAJOR;
  info.abi_minor = CP_PLUGIN_ABI_MINOR;
  info.host_version = host_version();
  info.context = ctx.raw();
  const cp_plugin_manifest* manifest = nullptr;
  cp_error* err = nullptr;
  cp_status st = entry(&info, &manifest, &err);
  std::string message = take_error(err);
  if (st != CP_OK) {
    out.error = "cp_plugin_entry refused to load (status " + std::to_string(st) + ")" +
                (message.empty() ? "" : ": " + message);
    return out;
  }
  if (!manifest) {
    out.error = "cp_plugin_entry returned no manifest";
    return out;
  }
  out.manifest = manifest;
  out.handle = std::shared_ptr<void>(lib, lib.get());
  return out;
}

}  // namespace cp::plugin
