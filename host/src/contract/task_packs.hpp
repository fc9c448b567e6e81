// Task packs: the kinds of job a planner knows, one per folder, packs/tasks/<name>/pack.json under the root
// (schemas/task_pack.schema.json). A pack declares the input fields a job needs (each with the question to
// ask when it is missing and, optionally, how to find it in the request's words), the hints that match a
// request to it, and the chain of steps to produce, templated with the fields ({{field}}).
//
// A pack is read beneath the root without following a link, bounded in size and depth like every file
// cp-host reads, and checked against its schema and against itself (its name is its folder's, every
// {{field}} it uses is declared, its patterns compile). A pack that fails any check is left out and said
// in the diagnostics; the others load.
#pragma once

#include "contract/validation.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cp::contract {

// The folder under the root that holds the task packs, and the file each pack's folder holds.
inline constexpr const char* kTaskPacksDir = "packs/tasks";
inline constexpr const char* kTaskPackFile = "pack.json";

struct TaskPack {
  std::string name;            // the pack's name, which is also its folder's
  std::filesystem::path file;  // <root>/packs/tasks/<name>/pack.json
  nlohmann::json doc;          // the pack as written; valid against task_pack.schema.json
  std::string sha256;          // of the file's bytes
};

struct TaskPackSet {
  std::vector<TaskPack> packs;          // the valid packs, sorted by name
  std::vector<Diagnostic> diagnostics;  // every pack left out, and why (file, line, JSON pointer)
  bool truncated = false;               // more pack folders than kMaxTaskPacks: the rest were not read
  const TaskPack* find(std::string_view name) const;
};

inline constexpr size_t kMaxTaskPacks = 256;

// Every pack of <root>/packs/tasks/. A missing folder is an empty set, not an error.
TaskPackSet load_task_packs(const std::filesystem::path& root);

// One pack by name; nullopt (with the reason in `diagnostics`) when there is no valid pack of that name.
// A name that is not [a-z][a-z0-9-]{0,63} is refused unread.
std::optional<TaskPack> load_task_pack(const std::filesystem::path& root, std::string_view name,
                                       std::vector<Diagnostic>& diagnostics);

// What `cp-host task-packs list --json` and GET /api/task-packs give for a pack: name, title, description,
// fields (name, description, type, required, pattern, choices, default, question, extract), match hints,
// the steps it produces (step_id, kind, role, runner, pack), path and sha256.
nlohmann::json task_pack_summary(const TaskPack& pack, const std::filesystem::path& root);

// The checks beyond the schema that a pack document must pass (used by load_task_packs and by
// `cp-host validate` through validation.cpp): its name equals its folder's when `folder_name` is not empty,
// every {{field}} of its chain is declared, field names are unique, every pattern compiles (RE2) and every
// default and choice fits the field's own type and pattern. Each problem: {pointer, message, expected}.
struct TaskPackProblem {
  std::string pointer;
  std::string rule;
  std::string message;
  std::string expected;
};
std::vector<TaskPackProblem> check_task_pack(const nlohmann::json& doc, std::string_view folder_name);

// Whether `path`, a path or glob relative to the repo root that a planned job names (a path field's value, a
// plan step's allowed, exclusive or output path), stays inside what such a job may touch: not empty, at most
// 1000 characters, one line, no leading '/', no '..' segment, and no segment naming the repository's git
// folder or the host's runtime folder (`.git`, `.runtime-cache`, in any letter case, or a glob segment such
// as ".gi?" that matches one of them; a bare "*" or "**" is the whole repository, not a reach for them).
// When not, `why` says what is wrong.
bool planned_path_ok(const std::string& path, std::string& why);

// Whether `value` is an acceptable answer for the pack field `field` (its type, choices and pattern; a path
// as planned_path_ok); when not, `why` says what is wrong. Shared by the host's plan check and the packs' own
// default checks.
bool field_value_ok(const nlohmann::json& field, const nlohmann::json& value, std::string& why);

// A person's text answer to pack field `field` as the field's value: trimmed; a list field split (paths on
// commas, blanks and line breaks; commands on line breaks); an integer or yes/no read as such; a choice as
// the choice it names in any letter case. What does not read as the type is returned as given. The template
// planner reads answers the same way; the host uses it to hold any planner's plan to what the person said.
nlohmann::json field_value_from_answer(const nlohmann::json& field, const nlohmann::json& answer);

}  // namespace cp::contract
