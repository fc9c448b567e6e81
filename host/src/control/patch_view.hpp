// A run's recorded patch (artifacts/diff.patch, `git diff --binary` output) read as data: its files with
// their status, hunks and added/removed counts, for the API's diff view and `cp-host runs diff --json`.
// The patch is the run's work and may be anything a run can make git print (odd names, binary files,
// millions of lines), so the parse is linear, never throws on what it does not recognise, and keeps at most
// `limits` worth of files, hunks and lines (the counts always cover the whole patch).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace cp::control {

struct PatchLimits {
  size_t max_files = 5000;    // files listed; beyond, only the totals count them
  size_t max_hunks = 20000;   // hunks kept over all files
  size_t max_lines = 100000;  // hunk lines kept over all files
};

// {"files": [{"path", "old_path"?, "status", "binary", "old_mode"?, "new_mode"?, "similarity"?, "added",
//   "removed", "hunks": [{"old_start", "old_lines", "new_start", "new_lines", "section", "lines"}],
//   "hunks_omitted"?}], "totals": {"files", "added", "removed", "binary"}, "truncated"}
// status: added | modified | deleted | renamed | copied. Each hunk line is kept as the patch has it, its
// first character the marker (' ', '+', '-', or '\' for "\ No newline at end of file").
nlohmann::json parse_patch(std::string_view patch, const PatchLimits& limits = {});

// A path as git writes it in a diff header: C-quoted ("a/sp\303\244ce") or bare; nullopt-like empty on a
// malformed quote. Exposed for tests.
std::string unquote_git_path(std::string_view s);

}  // namespace cp::control
