// A real `cp-host serve` on 127.0.0.1 (ephemeral port) over a RunProject, with tokens for each role.
#pragma once

#include "integration/http_client.hpp"
#include "integration/run_project.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

namespace cp::test {

inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return pred();
}

class ServeProcess {
 public:
  // Starts serve over project `p`; extra args go after `serve`, `env` ("K=V") on top of this process's
  // environment. Waits until it listens.
  ServeProcess(const RunProject& p, std::vector<std::string> extra = {}, std::vector<std::string> env = {})
      : p_(p), env_(std::move(env)) {
    start(std::move(extra));
  }
  ~ServeProcess() { stop(); }

  void start(std::vector<std::string> extra) {
    extra_ = extra;
    std::vector<std::string> args{
        CP_HOST_BIN, "--plugins", p_.plugins.string(), "--root", p_.dir.path().string(),
        "serve",     "--listen",  "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    static int starts = 0;
    out_ = p_.dir / ("serve-" + std::to_string(++starts) + ".out");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    for (const auto& kv : env_) {
      std::string key = kv.substr(0, kv.find('=') + 1);
      envs.erase(std::remove_if(envs.begin(), envs.end(),
                                [&](const std::string& x) { return x.rfind(key, 0) == 0; }),
                 envs.end());
      envs.push_back(kv);
    }
    std::vector<char*> envp;
    for (auto& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(out_.c_str(), "w", stdout);
      (void)f;
      ::dup2(::fileno(stdout), 2);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    port_ = 0;
    wait_until(
        [&] {
          std::string text = read_file(out_);
          auto at = text.find("listening on http://127.0.0.1:");
          if (at == std::string::npos) return exited();
          port_ = static_cast<uint16_t>(std::stoi(text.substr(at + 30)));
          return true;
        },
        // Generous: before it listens serve ends what a killed one left running (sealing its runs and,
        // with a shared store, pushing them), which under the sanitizers on a loaded machine takes long.
        // One that cannot start exits, and that ends the wait at once.
        std::chrono::seconds(120));
  }

  bool exited() {
    if (pid_ <= 0) return true;
    int ws = 0;
    if (::waitpid(pid_, &ws, WNOHANG) == pid_) {
      status_ = ws;
      pid_ = -1;
      return true;
    }
    return false;
  }

  // SIGTERM, then wait; returns the exit code.
  int stop() {
    if (pid_ <= 0) return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    ::kill(pid_, SIGTERM);
    int ws = 0;
    ::waitpid(pid_, &ws, 0);
    pid_ = -1;
    status_ = ws;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  }

  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int ws = 0;
    ::waitpid(pid_, &ws, 0);
    pid_ = -1;
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string output() const { return read_file(out_); }

 private:
  const RunProject& p_;
  std::vector<std::string> env_;
  std::vector<std::string> extra_;
  fs::path out_;
  pid_t pid_ = -1;
  int status_ = 0;
  uint16_t port_ = 0;
};

// Adds a token to <project>/tokens.json and returns it.
inline std::string add_token(const RunProject& p, const std::string& id, const std::string& role) {
  Ran r = host({"tokens", "add", "--file", (p.dir / "tokens.json").string(), "--id", id, "--role", role});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string t = r.out;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

inline std::map<std::string, std::string> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// A contract whose tool runner runs `commands` inside the sample repo (pack low unless said).
inline json queue_contract(const RunProject& p, const std::string& task_id, std::vector<std::string> commands,
                           int max_retries = 0) {
  json c = p.contract(std::move(commands));
  c["task_id"] = task_id;
  c["timeout_retry"] = {{"timeout_sec", 300}, {"max_retries", max_retries}, {"backoff_sec", 0}};
  return c;
}

// `cp-host queue submit` of `contract` (written to NAME.json in the project), with `extra` arguments; the
// queued item's id, or "" when the submission failed (the failure is reported).
inline std::string submit_cli(const RunProject& p, const json& contract, const std::string& name,
                              std::vector<std::string> extra = {}) {
  write_file(p.dir / (name + ".json"), contract.dump(2));
  std::vector<std::string> args{
      "--root", p.dir.path().string(), "queue", "submit", (p.dir / (name + ".json")).string(),
      "--repo", p.repo.string(),       "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  Ran r = host(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false).value("item_id", "");
}

}  // namespace cp::test
