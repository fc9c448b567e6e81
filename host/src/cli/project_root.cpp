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

// Why what the current folder holds may not decide a command's policies, packs and bundles: a project file,
// packs/, policies/ or .runtime-cache there that belongs to another user (not root) or that others may
// write to — planted in a shared folder, they would swap the rules a run is judged by. Group-writable is
// left alone here: the current folder is where the user chose to be, and a shared group checkout is
// common. "" when all that exists may be trusted.
std::string untrusted_here(const fs::path& cwd) {
  const fs::path cache = core::runtime_cache_dir(fs::path());
  for (const fs::path& name : {fs::path("cortexpilot.toml"), fs::path("cortexpilot.json"), fs::path("packs"),
                               fs::path("policies"), cache}) {
    struct stat st {};
    const fs::path p = cwd / name;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode) && ::stat(p.c_str(), &st) != 0) return p.string() + " is a dangling link";
    if (st.st_uid != ::geteuid() && st.st_uid != 0) return p.string() + " belongs to another user";
    if ((st.st_mode & S_IWOTH) &&
        !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && st.st_uid == ::geteuid()))
      return "others may write to " + p.string();
  }
  return "";
}

ProjectRoot refused_here(ProjectRoot r, const std::string& why) {
  r.refusal = "cp-host: " + why +
              ", so this folder does not choose the project root; give it with --root DIR " +
              "or CP_HOST_ROOT=DIR";
  return r;
}

}  // namespace

ProjectRoot find_project_root(const fs::path* given, const fs::path& cwd) {
  if (given) return {*given, "--root", "", ""};
  if (const char* env = std::getenv("CP_HOST_ROOT"); env && *env) return {env, "CP_HOST_ROOT", "", ""};
  const ProjectRoot none{".",
                         "the current folder (no cortexpilot.toml, cortexpilot.json, or packs/ and policies/ "
                         "in it; no trusted cortexpilot.toml or cortexpilot.json above it)",
                         "", ""};
  // Inside a kept worktree or a bundle (under a .runtime-cache): what a run wrote there never chooses the
  // root; the project whose cache it is does.
  if (inside_runtime_cache(cwd)) {
    const fs::path cache = core::runtime_cache_dir(fs::path()).filename();
    fs::path project;
    for (const auto& part : cwd) {
      if (part == cache) break;
      project /= part;
    }
    ProjectRoot r{project, "the project whose " + cache.string() + " holds the current folder", "", ""};
    if (std::string why = untrusted(project); !why.empty())
      return refused_here(r, project.string() + ": " + why);
    return r;
  }
  // The current folder is where the user chose to be: a project file or packs/ + policies/ there mark it,
  // and it stays "." so that paths are shown relative to it.
  const std::string here_untrusted = untrusted_here(cwd);
  if (!project_file(cwd).empty()) {
    ProjectRoot r{".", project_file(cwd) + " in " + cwd.string(), "", ""};
    return here_untrusted.empty() ? r : refused_here(r, here_untrusted);
  }
  {
    std::error_code ec;
    if (fs::is_directory(cwd / "packs", ec) && fs::is_directory(cwd / "policies", ec)) {
      ProjectRoot r{".", "packs/ and policies/ in " + cwd.string(), "", ""};
      return here_untrusted.empty() ? r : refused_here(r, here_untrusted);
    }
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
            return here_untrusted.empty() ? r : refused_here(r, here_untrusted);
          }
        return {dir, file + " in " + dir.string(), "", ""};
      }
    if (dir == dir.parent_path()) break;
  }
  // Nothing chose a root: the current folder is it, and what it holds must be trusted all the same.
  return here_untrusted.empty() ? none : refused_here(none, here_untrusted);
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
  static ProjectRoot root{".", "the current folder", "", ""};
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
