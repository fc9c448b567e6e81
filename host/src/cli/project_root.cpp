#include "cli/project_root.hpp"
#include "core/runtime_paths.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <cstdlib>
#include <set>
#include <system_error>
#include <utility>

namespace cp::cli {

namespace fs = std::filesystem;

namespace {

const char* const kProjectFiles[] = {"cortexpilot.toml", "cortexpilot.json"};

// The project file in `dir`, or "" when it has none.
std::string project_file(const fs::path& dir) {
  std::error_code ec;
  for (const char* file : kProjectFiles)
    if (fs::is_regular_file(dir / file, ec)) return file;
  return "";
}

// Why `path` may not be trusted to choose the root: a folder above the current one decides which policies,
// packs and plugins a command loads, so it must belong to this user (or root) and not be writable by others,
// as git's safe.directory reasons. "" when it may be trusted.
std::string untrusted(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "it cannot be read";
  if (S_ISLNK(st.st_mode)) return "it is a symbolic link";
  if (st.st_uid != ::geteuid() && st.st_uid != 0) return "it belongs to another user";
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return "others may write to it";
  return "";
}

// True for a folder inside the machine cache (kept worktrees, run bundles): what a run wrote there must
// never become the project a later command works in.
bool inside_runtime_cache(const fs::path& dir) {
  const fs::path cache = core::runtime_cache_dir(fs::path()).filename();
  for (const auto& part : dir)
    if (part == cache) return true;
  return false;
}

}  // namespace

ProjectRoot find_project_root(const fs::path* given, const fs::path& cwd) {
  if (given) return {*given, "--root", ""};
  if (const char* env = std::getenv("CP_HOST_ROOT"); env && *env) return {env, "CP_HOST_ROOT", ""};
  const ProjectRoot none{".",
                         "the current folder (no cortexpilot.toml, cortexpilot.json, or packs/ and policies/ "
                         "in it; no trusted cortexpilot.toml or cortexpilot.json above it)",
                         ""};
  // The current folder is where the user chose to be: a project file or packs/ + policies/ there mark it,
  // and it stays "." so that paths are shown relative to it.
  if (!project_file(cwd).empty()) return {".", project_file(cwd) + " in " + cwd.string(), ""};
  {
    std::error_code ec;
    if (fs::is_directory(cwd / "packs", ec) && fs::is_directory(cwd / "policies", ec))
      return {".", "packs/ and policies/ in " + cwd.string(), ""};
  }
  // Above it, as git looks for .git, only a project file counts (a stray packs/ folder higher up is not a
  // project), and only one this user owns in a folder this user owns.
  for (fs::path dir = cwd.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (!inside_runtime_cache(dir))
      if (std::string file = project_file(dir); !file.empty()) {
        for (const fs::path& p : {dir, dir / file})
          if (std::string why = untrusted(p); !why.empty()) {
            ProjectRoot r = none;
            r.warning = "cp-host: " + (dir / file).string() + " was not used as the project file because " +
                        p.string() + ": " + why + "; give the root with --root DIR or CP_HOST_ROOT=DIR";
            return r;
          }
        return {dir, file + " in " + dir.string(), ""};
      }
    if (dir == dir.parent_path()) break;
  }
  return none;
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
  static ProjectRoot root{".", "the current folder", ""};
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
