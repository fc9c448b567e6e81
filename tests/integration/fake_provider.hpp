// The fake OpenAI-compatible provider (tests/fakes/provider.py, a real HTTP server on 127.0.0.1), started
// for one test and stopped with it; shared by the tests of the agents runner, the provider probe and the llm
// planner.
#pragma once

#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

extern char** environ;

namespace cp::test {

// The fake provider, started for one test and stopped with it.
class FakeProvider {
  using json = nlohmann::json;

 public:
  FakeProvider() {
    std::string script = std::string(CP_SOURCE_DIR) + "/tests/fakes/provider.py";
    std::string port_file = (dir_ / "port").string();
    std::vector<std::string> args{"python3", script, port_file, log_file().string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawnp(&pid_, "python3", nullptr, nullptr, argv.data(), environ), 0);
    for (int i = 0; i < 100 && !std::filesystem::exists(port_file); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    port_ = std::filesystem::exists(port_file) ? cp::test::read_file(port_file) : "0";
  }
  ~FakeProvider() {
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
  }
  std::string base_url() const { return "http://127.0.0.1:" + port_ + "/v1"; }
  // Every request body the provider received, one JSON line each.
  std::filesystem::path log_file() const { return dir_ / "requests.jsonl"; }
  std::string requests() const {
    return std::filesystem::exists(log_file()) ? cp::test::read_file(log_file()) : "";
  }
  // The tool results (tool_call_id -> content) the model was sent in the last request.
  std::map<std::string, std::string> tool_results() const {
    std::map<std::string, std::string> out;
    std::istringstream in(requests());
    std::string line, last;
    while (std::getline(in, line))
      if (!line.empty()) last = line;
    json doc = json::parse(last, nullptr, false);
    if (!doc.is_object()) return out;
    for (const auto& m : doc.value("messages", json::array()))
      if (m.value("role", "") == "tool") out[m.value("tool_call_id", "")] = m.value("content", "");
    return out;
  }

 private:
  cp::test::TempDir dir_;
  pid_t pid_ = -1;
  std::string port_;
};

}  // namespace cp::test
