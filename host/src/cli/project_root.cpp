#include "cli/project_root.hpp"

#include <cstdlib>
#include <set>
#include <system_error>
#include <utility>

namespace cp::cli {

namespace fs = std::filesystem;

namespace {

// What marks a folder as a project root, and how to say so; empty when nothing does.
std::string marker(const fs::path& dir) {
  std::error_code ec;
  for (const char* file : {"cortexpilot.toml", "cortexpilot.json"})
    if (fs::is_regular_file(dir / file, ec)) return file;
  if (fs::is_directory(dir / "packs", ec) && fs::is_directory(dir / "policies", ec))
    return "packs/ and policies/";
  return "";
}

}  // namespace

ProjectRoot find_project_root(const fs::path* given, const fs::path& cwd) {
  if (given) return {*given, "--root"};
  if (const char* env = std::getenv("CP_HOST_ROOT"); env && *env) return {env, "CP_HOST_ROOT"};
  // Upward from the current folder, as git looks for .git; a folder that cannot be read (a sandbox hiding
  // it) is passed over.
  for (fs::path dir = cwd;; dir = dir.parent_path()) {
    // The current folder stays "." so that paths are shown as before, relative to it.
    if (std::string m = marker(dir); !m.empty())
      return {dir == cwd ? fs::path(".") : dir, m + " in " + dir.string()};
    if (dir == dir.parent_path() || dir.empty()) break;
  }
  return {".",
          "the current folder (no cortexpilot.toml, cortexpilot.json, or packs/ and policies/ in it or "
          "above it)"};
}

std::string root_hint(const ProjectRoot& root) {
  std::error_code ec;
  fs::path shown = fs::absolute(root.path, ec);
  if (ec) shown = root.path;
  return "cp-host: the project root was " + shown.lexically_normal().string() + " (chosen by " +
         root.chosen_by + "); run from inside your project, or choose it with --root DIR or CP_HOST_ROOT=DIR";
}

namespace {
ProjectRoot& chosen() {
  static ProjectRoot root{".", "the current folder"};
  return root;
}
}  // namespace

void remember_project_root(ProjectRoot root) {
  chosen() = std::move(root);
}
const ProjectRoot& project_root() {
  return chosen();
}

bool root_dependent(const std::vector<contract::Diagnostic>& diagnostics) {
  static const std::set<std::string> rules{
      "xref:pack", "xref:browser_policy", "xref:allowed_runners", "xref:forbidden_action",
      "xref:role", "xref:role_config",    "xref:prompt_ref"};
  for (const auto& d : diagnostics)
    if (rules.count(d.rule)) return true;
  return false;
}

}  // namespace cp::cli
