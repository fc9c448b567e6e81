// What cp-host checks in a worktree before its own git reads it. Everything in it was written by the run:
// a FIFO or a device node makes git block or read forever, a nested repository (a `.git` below the root)
// turns a folder into a gitlink so its files never reach the patch that is judged and promoted, and a name
// that is not UTF-8 cannot be stated faithfully in the bundle.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cp::run {

struct WorktreeScan {
  std::vector<std::string> special_files;   // FIFOs, sockets and device nodes, removed by the scan
  std::vector<std::string> nested_repos;    // folders holding a `.git` entry below the worktree's root
  std::vector<std::string> non_utf8_names;  // relative paths (bytes as found)

  // Why the run must be denied for what was found; empty when nothing.
  std::string denial() const;
};

// Walks the worktree without following symbolic links and without opening any file, skipping the root's
// own `.git`. Special files are unlinked as they are found, so that nothing after the scan can block on
// them. Folders under a nested `.git` are not walked.
WorktreeScan scan_worktree(const std::filesystem::path& root);

// True when `s` is well-formed UTF-8.
bool valid_utf8(const std::string& s);

// `s` with every byte that is not part of well-formed UTF-8 written as the four characters \xNN, so a
// run's file name can be stated in the bundle (JSON) and in events.
std::string as_utf8(const std::string& s);

}  // namespace cp::run
