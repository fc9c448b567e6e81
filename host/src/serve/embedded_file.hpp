// A file compiled into the binary: the built dashboard's assets (cmake/embed_dir.cmake writes the list).
#pragma once

#include <span>
#include <string_view>

namespace cp::serve {

struct EmbeddedFile {
  std::string_view path;   // "/index.html", "/assets/app-3F2A9C1B.js", "/assets/app-3F2A9C1B.js.gz"
  std::string_view bytes;  // the file's content
};

// The dashboard built into this binary; empty when it was built without one (no npm at build time).
std::span<const EmbeddedFile> embedded_ui();

}  // namespace cp::serve
