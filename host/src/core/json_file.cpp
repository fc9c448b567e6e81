#include "core/json_file.hpp"
#include "core/json_depth.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

namespace cp::core {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const fs::path& file, std::string& text) {
  text.clear();
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec || size > kMaxJsonFileBytes) return nullptr;  // refused unread: memory stays bounded
  std::ifstream in(file, std::ios::binary);
  if (!in) return nullptr;
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (text.size() > kMaxJsonFileBytes) {  // grew since it was measured
    text.clear();
    return nullptr;
  }
  if (!json_depth_ok(text)) return nullptr;
  json doc = json::parse(text, nullptr, false);
  return doc.is_discarded() ? json(nullptr) : doc;
}

json read_json_file(const fs::path& file) {
  std::string text;
  return read_json_file(file, text);
}

}  // namespace cp::core
