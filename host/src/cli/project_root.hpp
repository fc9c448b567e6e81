// Which project root a command works in, and why that one: found as git finds its repository, so that a
// command run from any folder of a project uses that project, and an error that depends on the root can say
// which root it was and how to choose another.
#pragma once

#include "contract/validation.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace cp::cli {

struct ProjectRoot {
  std::filesystem::path path;
  std::string chosen_by;  // "--root", "CP_HOST_ROOT", "cortexpilot.toml in …", or why none was found
  std::string warning;    // a project file passed over as untrusted, and why; "" when none was
  // Why no command may work in this root: the current folder's project file, packs/, policies/ or
  // .runtime-cache belongs to another user or others may write to it. "" when none.
  std::string refusal;
};

// `given` (--root) when set; else $CP_HOST_ROOT when set and not empty; else, when `cwd` is inside a
// .runtime-cache (a kept worktree), the project that cache belongs to; else "." when `cwd` holds a project
// file (cortexpilot.toml or cortexpilot.json) or both packs/ and policies/ — with `refusal` set when one of
// them, or the .runtime-cache there, belongs to another user or others may write to it; else the nearest
// folder above `cwd` holding a project file that it and the file belong to this user (or root) and are not
// writable by others, skipping folders inside a .runtime-cache; else "." with `warning` saying which
// untrusted project file stopped the search, if one did.
ProjectRoot find_project_root(const std::filesystem::path* given, const std::filesystem::path& cwd);

// One line telling which root was used and how to choose another; for problems a root decides (a pack, a
// policy, a role that does not exist under it).
std::string root_hint(const ProjectRoot& root);

// The root this process works in, as main() chose it, for the messages that name it.
void remember_project_root(ProjectRoot root);
const ProjectRoot& project_root();

// True when one of the problems depends on the root: a reference to a pack, policy, role or prompt.
bool root_dependent(const std::vector<contract::Diagnostic>& diagnostics);

}  // namespace cp::cli
