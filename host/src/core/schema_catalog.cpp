#include "core/schema_catalog.hpp"

#include "core/schema_catalog_data.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace cp::core {
namespace {

struct Slot {
  std::once_flag once;
  std::unique_ptr<JsonSchema> compiled;
};

std::map<std::string, Slot, std::less<>>& slots() {
  static auto* m = [] {
    auto* map = new std::map<std::string, Slot, std::less<>>();
    for (unsigned long i = 0; i < embedded::kSchemaCount; ++i) (*map)[embedded::kSchemas[i].name];
    return map;
  }();
  return *m;
}

}  // namespace

std::string_view schema_text(std::string_view name) {
  for (unsigned long i = 0; i < embedded::kSchemaCount; ++i)
    if (name == embedded::kSchemas[i].name) return embedded::kSchemas[i].text;
  return {};
}

const JsonSchema& schema(std::string_view name) {
  auto& m = slots();
  auto it = m.find(name);
  if (it == m.end()) throw std::out_of_range("no schema named " + std::string(name));
  std::call_once(it->second.once, [&] {
    it->second.compiled =
        std::make_unique<JsonSchema>(JsonSchema::compile(nlohmann::json::parse(schema_text(name))));
  });
  return *it->second.compiled;
}

std::vector<std::string> schema_names() {
  std::vector<std::string> out;
  for (const auto& [k, v] : slots()) out.push_back(k);
  return out;
}

}  // namespace cp::core
