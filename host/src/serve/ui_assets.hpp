// The dashboard's static files, answered at every path outside /api: the assets built into the binary,
// or a folder on disk (serve --ui-dir, for working on the dashboard). A path that names no file and has no
// extension is a page of the dashboard's own router and gets index.html.
#pragma once

#include "serve/api.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace cp::serve {

class UiAssets {
 public:
  // The files built into this binary (may be none: then every page says how to get the dashboard).
  static std::shared_ptr<const UiAssets> embedded();
  // The files of a built dashboard folder (web/dist), read at each request so a rebuild shows at once.
  // Throws std::runtime_error when `dir` has no index.html.
  static std::shared_ptr<const UiAssets> from_dir(const std::filesystem::path& dir);

  // Whether `path` belongs to the dashboard rather than to the API.
  static bool owns(const std::string& path);

  // The answer to a GET or HEAD (or 405 for another method) of a dashboard path.
  ApiResponse answer(const ApiRequest& req) const;

  bool built_in() const { return dir_.empty(); }

 private:
  struct File {
    std::string body, gzip, etag;
  };
  std::optional<File> find(const std::string& path) const;

  std::map<std::string, File> files_;  // built in
  std::filesystem::path dir_;          // or read from here
};

}  // namespace cp::serve
