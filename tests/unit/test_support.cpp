#include "unit/test_support.hpp"

#include <unistd.h>

#include "os/process.hpp"

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace cp::test {

TempDir::TempDir() {
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    auto p = std::filesystem::temp_directory_path() / ("cp-test-" + std::to_string(rd()));
    if (std::filesystem::create_directory(p)) {
      path_ = std::filesystem::canonical(p);
      return;
    }
  }
  throw std::runtime_error("cannot create a temp dir");
}

TempDir::~TempDir() {
  std::error_code ec;
  // Make everything removable first: tests may leave read-only files behind.
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream o(p, std::ios::binary);
  o << text;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream i(p, std::ios::binary);
  std::stringstream ss;
  ss << i.rdbuf();
  return ss.str();
}

Ran run(const std::vector<std::string>& argv, const std::filesystem::path& cwd) {
  return run_env(argv, {}, cwd);
}

Ran run_env(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            const std::filesystem::path& cwd) {
  os::ProcessSpec spec;
  spec.argv = argv;
  spec.cwd = cwd;
  spec.timeout = std::chrono::minutes(5);
  spec.env.emplace();
  for (char** e = environ; *e; ++e) spec.env->emplace_back(*e);
  for (const auto& kv : extra_env) {
    std::string key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(*spec.env, [&](const std::string& x) { return x.rfind(key, 0) == 0; });
    spec.env->push_back(kv);
  }
  std::string out, err;
  spec.on_stdout = [&](std::string_view s) {
    out.append(s);
    return true;
  };
  spec.on_stderr = [&](std::string_view s) {
    err.append(s);
    return true;
  };
  auto o = os::run_process(spec);
  return {o.term_signal ? 128 + o.term_signal : o.exit_code, out, err};
}

Ran sh(const std::string& line, const std::filesystem::path& cwd) {
  return run({"/bin/sh", "-c", line}, cwd);
}

}  // namespace cp::test
