#include "os/child_launch.hpp"

#include "os/sandbox.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace cp::os {
namespace {

// The step that failed in the child, sent to the parent with errno. Names stay in the parent.
enum Step : int { kStdio = 1, kChdir, kSession, kCgroup, kSandbox, kExec };

const char* step_name(int step) {
  switch (step) {
    case kStdio:
      return "stdio";
    case kChdir:
      return "chdir";
    case kSession:
      return "setsid";
    case kCgroup:
      return "joining the run cgroup";
    case kSandbox:
      return "sandbox";
    case kExec:
      return "exec";
  }
  return "child setup";
}

// Marks every descriptor above stderr close-on-exec. close_range(2) does it in one call on Linux >= 5.11;
// older kernels get a loop up to the descriptor limit.
void close_inherited_fds() {
  constexpr unsigned kCloexec = 1u << 2;  // CLOSE_RANGE_CLOEXEC
  if (::syscall(SYS_close_range, 3u, ~0u, kCloexec) == 0) return;
  struct rlimit rl {};
  long top =
      ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? static_cast<long>(rl.rlim_cur) : 65536;
  for (long fd = 3; fd < top; ++fd) ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
}

[[noreturn]] void fail(int report_fd, int step) {
  int msg[2] = {step, errno};
  [[maybe_unused]] ssize_t n = ::write(report_fd, msg, sizeof msg);
  ::_exit(127);
}

// Runs in the child: system calls only, no allocation, no locks.
[[noreturn]] void become_program(const ChildPlan& p, pid_t parent, int report_fd) {
  // Descriptors 0-2 may themselves sit among the sources: move them out of the way first.
  int src[3];
  for (int i = 0; i < 3; ++i) {
    src[i] = p.stdio[i] >= 0 && p.stdio[i] < 3 ? ::fcntl(p.stdio[i], F_DUPFD_CLOEXEC, 3) : p.stdio[i];
    if (p.stdio[i] >= 0 && src[i] < 0) fail(report_fd, kStdio);
  }
  for (int i = 0; i < 3; ++i)
    if (src[i] >= 0 && ::dup2(src[i], i) < 0) fail(report_fd, kStdio);
  if (p.cwd && ::chdir(p.cwd) != 0) fail(report_fd, kChdir);
  // A session of its own, not only a group: no controlling terminal, so nothing it runs can reach the
  // terminal cp-host was started from. The session id is the group id, so killing the group still works.
  if (::setsid() < 0) fail(report_fd, kSession);
  // Death with the host thread that waits on it, so a killed host leaves no agent behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  // Into the run's cgroup first ("0" means the writer itself), then the sandbox, which leaves the cgroup
  // tree out of reach.
  if (p.cgroup_procs_fd >= 0 && ::write(p.cgroup_procs_fd, "0", 1) != 1) fail(report_fd, kCgroup);
  // Nothing the host holds open may reach the program: another thread's bundle files, pipes or sockets
  // opened without O_CLOEXEC would otherwise be writable handles that no sandbox rule governs. Marked
  // before the sandbox lowers the descriptor limit the fallback loop counts to.
  close_inherited_fds();
  if (p.sandbox)
    if (int e = p.sandbox->apply_in_child()) {
      errno = e;
      fail(report_fd, kSandbox);
    }
  // The forking thread's blocked signals and an ignored SIGPIPE would survive exec; the program starts
  // with the defaults, so SIGTERM stops it and a closed pipe ends it.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::execve(p.exe, const_cast<char* const*>(p.argv), const_cast<char* const*>(p.envp ? p.envp : environ));
  fail(report_fd, kExec);
}

}  // namespace

// A copy of `fd` numbered above stderr (close-on-exec), so the child's dup2 onto 0-2 cannot replace it;
// -1 stays -1. A host started with 0, 1 or 2 closed gets such low numbers for its own descriptors.
int above_stdio(int fd) {
  return fd < 0 || fd > 2 ? fd : ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

pid_t launch_child(const ChildPlan& given, std::string& error) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    return -1;
  }
  ChildPlan plan = given;
  const int low_report = report[1], low_cgroup = plan.cgroup_procs_fd;
  report[1] = above_stdio(low_report);
  plan.cgroup_procs_fd = above_stdio(low_cgroup);
  // The parent's write end (and the copies made above): closed once the child has its own.
  auto close_write_ends = [&] {
    if (report[1] >= 0) ::close(report[1]);
    if (report[1] != low_report) ::close(low_report);
    if (plan.cgroup_procs_fd != low_cgroup && plan.cgroup_procs_fd >= 0) ::close(plan.cgroup_procs_fd);
  };
  if (report[1] < 0 || (low_cgroup >= 0 && plan.cgroup_procs_fd < 0)) {
    error = std::string("fcntl: ") + std::strerror(errno);
    close_write_ends();
    ::close(report[0]);
    return -1;
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(report[0]);
    become_program(plan, parent, report[1]);
  }
  int fork_errno = errno;
  close_write_ends();
  if (pid < 0) {
    ::close(report[0]);
    error = std::string("fork: ") + std::strerror(fork_errno);
    return -1;
  }
  // The write end closes at exec (O_CLOEXEC): no bytes means the program runs.
  int msg[2] = {0, 0};
  ssize_t n;
  do n = ::read(report[0], msg, sizeof msg);
  while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == 0) return pid;
  if (n < 0) ::kill(pid, SIGKILL);  // no word from the child: it must not run unsupervised
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  error = n == static_cast<ssize_t>(sizeof msg)
              ? std::string(step_name(msg[0])) + ": " + std::strerror(msg[1])
              : std::string("child setup failed before exec");
  return -1;
}

}  // namespace cp::os
