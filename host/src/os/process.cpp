#include "os/process.hpp"

#include "os/child_launch.hpp"

#define BOOST_PROCESS_USE_STD_FS 1
// Boost 1.81 forgets these two includes on the std::filesystem path.
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/optional.hpp>
#include <boost/process/v2/process.hpp>
#include <type_traits>

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace cp::os {
namespace asio = boost::asio;
namespace bp = boost::process::v2;

namespace {

class Tail {
 public:
  explicit Tail(size_t cap) : cap_(cap) {}
  void add(std::string_view s) {
    if (cap_ == 0) return;
    buf_.append(s);
    if (buf_.size() > 2 * cap_) buf_.erase(0, buf_.size() - cap_);
  }
  std::string take() {
    if (buf_.size() > cap_) buf_.erase(0, buf_.size() - cap_);
    return std::move(buf_);
  }

 private:
  size_t cap_;
  std::string buf_;
};

// Line mode: the part of a line seen so far, and whether it was cut at the length limit.
struct LineState {
  std::string line;
  bool cut = false;
  bool stopped = false;
  std::function<bool(std::string_view)> fn;
  void flush() {
    if (!stopped && fn && (!line.empty() || cut)) stopped = !fn(line);
    line.clear();
    cut = false;
  }
};

// Combines a chunk callback and a line callback into the one callback a stream calls.
std::function<bool(std::string_view)> with_lines(std::function<bool(std::string_view)> chunk,
                                                 std::function<bool(std::string_view)> per_line,
                                                 size_t max_line, std::shared_ptr<LineState>& state) {
  if (!per_line) return chunk;
  state = std::make_shared<LineState>();
  state->fn = std::move(per_line);
  return [chunk = std::move(chunk), st = state, max_line](std::string_view data) mutable {
    bool chunk_ok = !chunk || chunk(data);
    if (!chunk_ok) chunk = nullptr;
    while (!data.empty() && !st->stopped) {
      size_t nl = data.find('\n');
      std::string_view part = data.substr(0, nl);
      size_t room = max_line > st->line.size() ? max_line - st->line.size() : 0;
      if (part.size() > room) st->cut = true;
      st->line.append(part.substr(0, room));
      if (nl == std::string_view::npos) break;
      if (!st->stopped) st->stopped = !st->fn(st->line);
      st->line.clear();
      st->cut = false;
      data.remove_prefix(nl + 1);
    }
    return (chunk != nullptr) || !st->stopped;
  };
}

// One captured stream: pipe -> file + callback + tail.
struct Stream {
  Stream(asio::io_context& io, size_t tail) : pipe(io), tail(tail) {}
  asio::readable_pipe pipe;
  std::array<char, 65536> buf{};
  FILE* file = nullptr;
  std::function<bool(std::string_view)> cb;
  Tail tail;
  uint64_t bytes = 0;
  bool open = true;
  std::function<void()> on_close;      // lets the caller stop its ticker as soon as everything is done
  std::shared_ptr<LineState> pending;  // line mode: the unfinished line

  void start() {
    pipe.async_read_some(asio::buffer(buf), [this](const bp::error_code& ec, size_t n) {
      if (n > 0) {
        std::string_view chunk(buf.data(), n);
        bytes += n;
        if (file) std::fwrite(chunk.data(), 1, chunk.size(), file);
        tail.add(chunk);
        if (cb && !cb(chunk)) cb = nullptr;
      }
      if (ec) {
        open = false;
        if (on_close) on_close();
        return;
      }
      start();
    });
  }
};

FILE* open_out(const std::filesystem::path& p) {
  if (p.empty()) return nullptr;
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  return std::fopen(p.c_str(), "wbe");  // 'e': O_CLOEXEC, so no other thread's child inherits it
}

std::string signal_name(int sig) {
  const char* n = ::sigabbrev_np(sig);
  return n ? std::string("SIG") + n : "signal";
}

}  // namespace

std::filesystem::path find_program(std::string_view name) {
  if (name.find('/') != std::string_view::npos) return std::filesystem::path(name);
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    if (!dir.empty()) {
      std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate))
        return candidate;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return {};
}

std::string ProcessOutcome::describe() const {
  if (!started) return "not started: " + start_error;
  std::string s;
  if (timed_out) s = "timed out after " + std::to_string(duration.count()) + " ms, ";
  if (cancelled) s = "cancelled, ";
  if (term_signal)
    return s + "killed by signal " + std::to_string(term_signal) + " (" + signal_name(term_signal) + ")";
  return s + "exit " + std::to_string(exit_code);
}

ProcessOutcome run_process(const ProcessSpec& spec) {
  ProcessOutcome out;
  auto t0 = std::chrono::steady_clock::now();
  auto finish = [&] {
    out.duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    return out;
  };
  if (spec.argv.empty()) {
    out.start_error = "empty command";
    out.exit_code = 127;
    return finish();
  }
  std::filesystem::path exe = find_program(spec.argv[0]);
  if (exe.empty() || ::access(exe.c_str(), X_OK) != 0) {
    out.start_error = "program not found or not executable: " + spec.argv[0];
    out.exit_code = 127;
    return finish();
  }

  asio::io_context io;
  Stream so(io, spec.tail_bytes), se(io, spec.tail_bytes);
  so.cb = with_lines(spec.on_stdout, spec.on_stdout_line, spec.max_line_bytes, so.pending);
  se.cb = with_lines(spec.on_stderr, spec.on_stderr_line, spec.max_line_bytes, se.pending);
  so.file = open_out(spec.stdout_path);
  se.file = open_out(spec.stderr_path);
  struct Closer {
    Stream& a;
    Stream& b;
    ~Closer() {
      if (a.file) std::fclose(a.file);
      if (b.file) std::fclose(b.file);
    }
  } closer{so, se};

  // Everything the child needs is built here, before fork: the child itself may not allocate.
  std::vector<const char*> argv;
  const std::string exe_path = exe.string();
  argv.push_back(exe_path.c_str());
  for (size_t i = 1; i < spec.argv.size(); ++i) argv.push_back(spec.argv[i].c_str());
  argv.push_back(nullptr);
  std::vector<const char*> envp;
  if (spec.env) {
    for (const auto& e : *spec.env) envp.push_back(e.c_str());
    envp.push_back(nullptr);
  }
  const std::string cwd = spec.cwd.empty() ? std::string() : spec.cwd.string();

  // Every descriptor is close-on-exec from birth, so no other thread's child inherits a write end and
  // holds this process's output open.
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    out.start_error = std::string("pipe: ") + std::strerror(errno);
    out.exit_code = 127;
    return finish();
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    out.start_error = std::string("pipe: ") + std::strerror(errno);
    ::close(out_pipe[0]), ::close(out_pipe[1]);
    out.exit_code = 127;
    return finish();
  }
  so.pipe.assign(out_pipe[0]);
  se.pipe.assign(err_pipe[0]);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ChildPlan plan;
  plan.exe = exe_path.c_str();
  plan.argv = argv.data();
  plan.envp = spec.env ? envp.data() : nullptr;
  plan.cwd = cwd.empty() ? nullptr : cwd.c_str();
  plan.stdio[0] = devnull;
  plan.stdio[1] = out_pipe[1];
  plan.stdio[2] = err_pipe[1];
  plan.sandbox = spec.sandbox.get();
  plan.cgroup_procs_fd = spec.cgroup_procs_fd;
  std::string launch_error;
  const pid_t pid = devnull < 0 ? -1 : launch_child(plan, launch_error);
  if (devnull < 0) launch_error = std::string("/dev/null: ") + std::strerror(errno);
  // The write ends close here, so EOF arrives once the child (and anything it forked) lets go.
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) {
    out.start_error = launch_error + (spec.sandbox ? " (starting inside the run sandbox)" : "");
    out.exit_code = 127;
    return finish();
  }
  // The process is watched through a pidfd. Without one (an old kernel, a descriptor limit) nobody could
  // supervise it: it is killed and the call says why.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int err = errno;
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    out.start_error = std::string("pidfd_open: ") + std::strerror(err);
    out.exit_code = 127;
    return finish();
  }
  std::optional<bp::process> proc;
  proc.emplace(io.get_executor(), pid, pidfd);
  out.started = true;
  out.pid = proc->id();
  const pid_t group = proc->id();
  if (spec.on_start) spec.on_start(group);

  bool exited = false;
  int native_status = 0;
  auto kill_group = [&](int sig) { ::kill(-group, sig); };

  // One ticker drives the deadline, the cancel flag and the escalation to SIGKILL. It is cancelled the
  // moment the process has exited and both pipes are closed, so a short command costs no idle tick.
  asio::steady_timer tick(io);
  auto all_done = [&] {
    if (exited && !so.open && !se.open) tick.cancel();
  };
  so.on_close = all_done;
  se.on_close = all_done;
  so.start();
  se.start();
  proc->async_wait([&](const bp::error_code&, int) {
    exited = true;
    native_status = proc->native_exit_code();
    // Reaped: let go of the pid, which the kernel may give to another child of this host before the
    // process object is destroyed (whose destructor would otherwise wait for, or kill, that pid).
    proc->detach();
    // Anything still in the leader's group is a leftover child: it must not outlive the call.
    kill_group(SIGKILL);
    all_done();
  });

  std::optional<std::chrono::steady_clock::time_point> term_sent;
  std::optional<std::chrono::steady_clock::time_point> exited_at;
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::milliseconds(20));
    tick.async_wait([&](const bp::error_code& ec) {
      if (ec) return;
      auto now = std::chrono::steady_clock::now();
      if (!exited) {
        bool cancel_now = (spec.cancel && spec.cancel->load()) || (spec.stop && spec.stop->load()) ||
                          (!term_sent && spec.keep_running && !spec.keep_running());
        bool deadline = spec.timeout.count() > 0 && now - t0 >= spec.timeout;
        if (!term_sent && (cancel_now || deadline)) {
          out.cancelled = cancel_now && !deadline;
          out.timed_out = deadline;
          kill_group(SIGTERM);
          term_sent = now;
        } else if (term_sent && now - *term_sent >= spec.grace) {
          kill_group(SIGKILL);
        }
      } else {
        if (!exited_at) exited_at = now;
        // A grandchild that escaped the group can hold the pipes open; do not wait for it forever.
        if (now - *exited_at > std::chrono::seconds(2)) {
          bp::error_code ignored;
          so.pipe.close(ignored);
          se.pipe.close(ignored);
        }
      }
      if (!exited || so.open || se.open) arm();
    });
  };
  arm();
  io.run();
  if (so.pending) so.pending->flush();  // a last line without '\n'
  if (se.pending) se.pending->flush();

  if (WIFEXITED(native_status)) {
    out.exit_code = WEXITSTATUS(native_status);
  } else if (WIFSIGNALED(native_status)) {
    out.term_signal = WTERMSIG(native_status);
  }
  out.stdout_tail = so.tail.take();
  out.stderr_tail = se.tail.take();
  out.stdout_bytes = so.bytes;
  out.stderr_bytes = se.bytes;
  if (so.file) std::fflush(so.file), ::fsync(::fileno(so.file));
  if (se.file) std::fflush(se.file), ::fsync(::fileno(se.file));
  return finish();
}

}  // namespace cp::os
