// The run's own chromium: started through the host's spawn service on a thread of its own (the host
// holds it in the run's process group, cgroup and sandbox, and kills every child — zygote, renderers,
// GPU — when it ends), found through the DevToolsActivePort file it writes, stopped on demand through
// the spawn request's keep_running callback. And the attach path: a browser someone else started,
// reached only on a loopback DevTools endpoint and never stopped.
#pragma once

#include <cortexpilot/plugin.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cp::browser {

class ChromiumProcess {
 public:
  // `timeout_ms`: the most the process may live (the run's wall budget).
  // `shared_profile`: the profile lies in the shared state folder, which only this process may write.
  ChromiumProcess(cp::Context ctx, std::vector<std::string> argv, std::vector<std::string> env,
                  std::filesystem::path user_data_dir, std::string stderr_path, uint64_t timeout_ms,
                  bool shared_profile);
  ~ChromiumProcess();
  ChromiumProcess(const ChromiumProcess&) = delete;
  ChromiumProcess& operator=(const ChromiumProcess&) = delete;

  // The browser's DevTools WebSocket URL, once it listens. Throws std::runtime_error (it exited, or the
  // time ran out).
  std::string wait_endpoint(std::chrono::milliseconds timeout);
  bool exited() const { return exited_; }
  // How it ended: "exit 0", "killed by signal 9", "stopped by the run", "did not start".
  std::string describe_exit() const;
  // Waits up to `grace` for it to exit by itself (after Browser.close), then has the host stop it.
  void stop(std::chrono::milliseconds grace);

 private:
  cp::Context ctx_;
  std::filesystem::path user_data_dir_;
  std::atomic<bool> exited_{false};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  cp::SpawnResult result_;
  std::string spawn_error_;
  std::thread thread_;
};

// The chromium command line for a run: headless, no first-run or background traffic, DevTools on an
// ephemeral loopback port. `--no-sandbox`: chromium's own sandbox needs user namespaces, which the run
// sandbox's seccomp filter refuses; the run sandbox (Landlock, seccomp, cgroup) is what confines it.
std::vector<std::string> chromium_argv(const std::string& binary, const std::filesystem::path& user_data_dir,
                                       bool headless);

// The DevTools WebSocket URL of a browser at `endpoint` (http://host:port or ws://host:port/...), asked
// at /json/version. Throws std::invalid_argument when the endpoint is not loopback (so a contract can
// never point the run at another machine's browser), std::runtime_error when nothing answers.
std::string discover_endpoint(const std::string& endpoint, std::chrono::milliseconds timeout);

}  // namespace cp::browser
