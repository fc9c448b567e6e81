// The host's process service: every process a runner, gate or probe starts goes through here, so the
// host alone owns process groups, deadlines, kills and reaping. Boost.Process stays inside process.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cp::os {

class PreparedSandbox;

struct ProcessSpec {
  std::vector<std::string> argv;                // argv[0] resolved through PATH when it has no '/'
  std::filesystem::path cwd;                    // empty = current directory
  std::optional<std::vector<std::string>> env;  // "K=V" entries replacing the environment
  std::chrono::milliseconds timeout{0};         // 0 = no deadline
  std::chrono::milliseconds grace{2000};        // SIGTERM -> SIGKILL delay on timeout or cancel
  std::filesystem::path stdout_path;            // when set, stdout is written to this file
  std::filesystem::path stderr_path;            // when set, stderr is written to this file
  // Called with raw chunks as they arrive, on the calling thread. Return false to stop receiving (the
  // process keeps running; its output still goes to the files).
  std::function<bool(std::string_view)> on_stdout;
  std::function<bool(std::string_view)> on_stderr;
  // Line mode: called once per complete line of stdout / stderr (without the '\n'; a last line without one
  // is delivered at exit). Lines longer than max_line_bytes are cut there and the rest of the line dropped.
  // Same threading and return rules as the chunk callbacks; both kinds may be set.
  std::function<bool(std::string_view)> on_stdout_line;
  std::function<bool(std::string_view)> on_stderr_line;
  size_t max_line_bytes = 1u << 20;
  const std::atomic<bool>* cancel = nullptr;  // polled; when it turns true the group is stopped
  const std::atomic<bool>* stop = nullptr;    // a second such flag: the caller's own reason (a budget)
  // Polled with the flags, on the calling thread; returning false stops the group as `stop` does.
  std::function<bool()> keep_running;
  size_t tail_bytes = 4096;  // how much of each stream to keep in the outcome
  // Called once the process runs, with its pid (= its process group id), on the calling thread. Lets a
  // run record its groups so that recovery can kill what a crashed host left behind.
  std::function<void(int pid)> on_start;
  // The run sandbox the child enters between fork and exec (null: none). A child that cannot enter it
  // does not exec: the outcome says "not started" with the reason.
  std::shared_ptr<const os::PreparedSandbox> sandbox;
  // An open cgroup.procs of the run's cgroup (-1: none): the child joins it before it execs, so that
  // nothing it forks can leave the run's reach.
  int cgroup_procs_fd = -1;
};

struct ProcessOutcome {
  bool started = false;
  std::string start_error;  // why it did not start
  int exit_code = -1;       // exit status when it exited, else -1 (127 when it did not start)
  int term_signal = 0;      // the signal that ended it, else 0
  bool timed_out = false;
  bool cancelled = false;
  int pid = -1;
  std::chrono::milliseconds duration{0};
  std::string stdout_tail;  // last tail_bytes of stdout
  std::string stderr_tail;
  uint64_t stdout_bytes = 0;
  uint64_t stderr_bytes = 0;
  bool ok() const { return started && exit_code == 0 && term_signal == 0 && !timed_out && !cancelled; }
  // "exit 3", "signal 9 (SIGKILL)", "timed out after 5000 ms", "not started: ..."
  std::string describe() const;
};

// Runs the process to completion. Never throws for process failures; they are in the outcome.
// The process gets stdin from /dev/null and its own process group; when the leader ends, anything left
// in its group is killed, so no child outlives the call.
ProcessOutcome run_process(const ProcessSpec& spec);

// Looks up a program name in PATH. Empty when not found.
std::filesystem::path find_program(std::string_view name);

}  // namespace cp::os
