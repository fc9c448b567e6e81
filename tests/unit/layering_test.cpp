// The folders of host/src are layers: a folder includes only from its own folder or a lower layer, so the
// include graph has no cycle. The order is written once, in docs/architecture.md ("Layers, bottom to top:"),
// and this test holds the code to it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// The layer order from the line "Layers, bottom to top: `core` → `os` → ..." of the architecture page.
std::vector<std::string> documented_layers(const fs::path& page) {
  std::ifstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Layers, bottom to top:", 0) != 0) continue;
    std::vector<std::string> out;
    static const std::regex folder("`([a-z_]+)`");
    for (std::sregex_iterator it(line.begin(), line.end(), folder), end; it != end; ++it)
      out.push_back((*it)[1]);
    return out;
  }
  return {};
}

// One include that reaches up (or into a folder the order does not know): "file:line includes what".
std::vector<std::string> layer_violations(const fs::path& src, const std::vector<std::string>& layers) {
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < layers.size(); ++i) rank[layers[i]] = i;
  static const std::regex include(R"(^\s*#\s*include\s*"([a-z_]+)/[^"]+")");
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    fs::path rel = e.path().lexically_relative(src);
    const std::string from = rel.begin()->string();
    if (!rank.count(from)) {
      out.push_back(rel.string() + ": folder '" + from + "' has no place in the layer order");
      continue;
    }
    std::ifstream in(e.path());
    std::string line;
    std::smatch m;
    for (int n = 1; std::getline(in, line); ++n) {
      if (!std::regex_search(line, m, include)) continue;
      const std::string to = m[1];
      if (!fs::is_directory(src / to)) continue;  // a system or SDK header ("cortexpilot/...")
      if (!rank.count(to) || rank[to] > rank[from])
        out.push_back(rel.string() + ":" + std::to_string(n) + " (" + from + ") includes " + to + "/");
    }
  }
  return out;
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(Layering, TheOrderIsDocumentedAndCoversEveryFolder) {
  auto layers = documented_layers(fs::path(CP_SOURCE_DIR) / "docs/architecture.md");
  ASSERT_GE(layers.size(), 10u) << "docs/architecture.md lost its 'Layers, bottom to top:' line";
  EXPECT_EQ(layers.front(), "core");
  EXPECT_EQ(layers.back(), "cli");
  for (const auto& e : fs::directory_iterator(fs::path(CP_SOURCE_DIR) / "host/src")) {
    if (!e.is_directory()) continue;
    EXPECT_NE(std::find(layers.begin(), layers.end(), e.path().filename().string()), layers.end())
        << e.path().filename() << " is missing from the layer order";
  }
}

TEST(Layering, NoHostFolderIncludesFromAHigherLayer) {
  auto layers = documented_layers(fs::path(CP_SOURCE_DIR) / "docs/architecture.md");
  ASSERT_FALSE(layers.empty());
  auto bad = layer_violations(fs::path(CP_SOURCE_DIR) / "host/src", layers);
  std::ostringstream all;
  for (const auto& b : bad) all << "\n  " << b;
  EXPECT_TRUE(bad.empty()) << "includes against the layer order:" << all.str();
}

// The check itself can fail: a tree with one upward include, one unknown folder and clean includes.
TEST(Layering, TheCheckFindsAnUpwardIncludeInATree) {
  fs::path tree = fs::path(testing::TempDir()) / "layering-self-test";
  fs::remove_all(tree);
  write(tree / "core/clock.hpp", "#pragma once\n#include <string>\n#include \"core/other.hpp\"\n");
  write(tree / "core/other.hpp", "#pragma once\n");
  write(tree / "store/bundle.cpp", "#include \"core/clock.hpp\"\n#include \"cortexpilot/plugin.h\"\n");
  EXPECT_TRUE(layer_violations(tree, {"core", "store"}).empty());
  write(tree / "core/bad.cpp", "// below reaches up\n  #  include \"store/bundle.hpp\"\n");
  auto bad = layer_violations(tree, {"core", "store"});
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0], "core/bad.cpp:2 (core) includes store/");
  write(tree / "extra/x.cpp", "\n");
  EXPECT_EQ(layer_violations(tree, {"core", "store"}).size(), 2u);
  fs::remove_all(tree);
}

}  // namespace
