// The helpers `cp-host mcp`'s read and write tools share (mcp_tools.hpp): reading arguments, building input
// schemas, resolving a path the client gave without leaving the project root, and the plugins contracts are
// checked against.
#include "cli/mcp_tools.hpp"

#include <filesystem>
#include <system_error>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

std::string mcp_text(const json& a, const char* key) {
  auto it = a.find(key);
  return it != a.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t mcp_number(const json& a, const char* key, int64_t fallback) {
  auto it = a.find(key);
  return it != a.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

std::string mcp_cut(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

json mcp_schema(json properties, std::vector<std::string> required) {
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

json mcp_string(const char* description, size_t max_length) {
  return {{"type", "string"}, {"description", description}, {"minLength", 1}, {"maxLength", max_length}};
}

json mcp_integer(const char* description, int64_t minimum, int64_t maximum) {
  return {{"type", "integer"}, {"description", description}, {"minimum", minimum}, {"maximum", maximum}};
}

json mcp_run_id_schema() {
  return mcp_string("A run id, as list_runs gives it", 256);
}

json mcp_contract_properties() {
  return {{"contract",
           {{"type", "object"},
            {"description", "The task contract itself (a JSON object). Give this or path, not both"}}},
          {"path", mcp_string("A contract file relative to the project root (contracts/x.json); no absolute "
                              "path, no '..', no link leading out of the root. Give this or contract",
                              4096)}};
}

std::optional<fs::path> mcp_file_in_root(const McpContext& c, const std::string& rel, std::string& why) {
  if (rel.empty() || rel.find('\0') != std::string::npos) {
    why = "path is empty or holds a NUL character";
    return std::nullopt;
  }
  const fs::path p(rel);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) {
    why = "path '" + mcp_cut(rel) + "' is absolute; give it relative to the project root";
    return std::nullopt;
  }
  for (const auto& part : p)
    if (part == "..") {
      why = "path '" + mcp_cut(rel) + "' climbs with '..'; give it inside the project root";
      return std::nullopt;
    }
  std::error_code ec;
  const fs::path real = fs::canonical(c.root_real / p, ec);
  if (ec) {
    why = "path '" + mcp_cut(rel) + "' does not exist under the project root";
    return std::nullopt;
  }
  const fs::path inside = real.lexically_relative(c.root_real);
  if (inside.empty() || *inside.begin() == "..") {
    why = "path '" + mcp_cut(rel) + "' leads out of the project root through a link";
    return std::nullopt;
  }
  if (!fs::is_regular_file(real, ec)) {
    why = "path '" + mcp_cut(rel) + "' is not a regular file";
    return std::nullopt;
  }
  return real;
}

bool mcp_one_contract(const json& a, std::string& why) {
  const bool inline_given = a.contains("contract"), path_given = a.contains("path");
  if (inline_given == path_given)
    why = "give the contract either inline (contract) or as a file (path), once";
  return inline_given != path_given;
}

const plugin::Registry* mcp_registry(McpContext& c) {
  if (!c.registry_tried) {
    c.registry_tried = true;
    auto reg = std::make_unique<plugin::Registry>();
    if (load_plugins(c.g, *reg)) c.registry = std::move(reg);
  }
  return c.registry.get();
}

}  // namespace cp::cli
