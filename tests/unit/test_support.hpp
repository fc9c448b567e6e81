// Helpers shared by the test programs: scratch folders, files, and running real processes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cp::test {

// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& p, const std::string& text);
std::string read_file(const std::filesystem::path& p);

struct Ran {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv (real process, through the host's process service) and returns exit code and output.
Ran run(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});

// The same with extra "K=V" entries on top of this process's environment.
Ran run_env(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            const std::filesystem::path& cwd = {});

// Runs a shell line with /bin/sh -c; for test set-up such as building a git repo.
Ran sh(const std::string& line, const std::filesystem::path& cwd = {});

}  // namespace cp::test
