// Finding a program the way a shell would, and reading its `--version` answer: shared by the probes
// (header-only: plugins are separate libraries and must not depend on the host's code).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace cp::plugins {

// A regular file this process may execute.
inline bool executable_file(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// `name` when it holds a '/' and is executable; else the first executable PATH entry of that name (PATH
// unset: /usr/bin:/bin, as a shell would); else "".
inline std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return executable_file(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string rest = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= rest.size()) {
    size_t colon = rest.find(':', start);
    std::string dir = rest.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty() && executable_file(std::filesystem::path(dir) / name))
      return (std::filesystem::path(dir) / name).string();
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

// The first line of `s` without trailing blanks (a version banner).
inline std::string trimmed_first_line(const std::string& s) {
  std::string l = s.substr(0, s.find('\n'));
  while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t')) l.pop_back();
  return l;
}

}  // namespace cp::plugins
