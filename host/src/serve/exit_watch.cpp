#include "serve/exit_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace cp::serve {

namespace {

int pidfd_of(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

ExitWatch::ExitWatch(std::function<void()> on_exit) : on_exit_(std::move(on_exit)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ >= 0) thread_ = std::thread([this] { loop(); });
}

ExitWatch::~ExitWatch() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  thread_.join();
  ::close(wake_fd_);
  for (int fd : added_) ::close(fd);
}

void ExitWatch::add(pid_t pid) {
  if (wake_fd_ < 0) return;
  int fd = pidfd_of(pid);
  if (fd < 0) {
    if (errno == ESRCH) on_exit_();  // already reaped elsewhere or gone: let the scheduler look now
    return;
  }
  {
    std::lock_guard lock(mu_);
    added_.push_back(fd);
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void ExitWatch::loop() {
  std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
  for (;;) {
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno != EINTR) return;
    if (n <= 0) continue;
    bool exited = false;
    // A pidfd is readable once its process has exited: poked once, then no longer watched.
    for (size_t i = fds.size(); i-- > 1;)
      if (fds[i].revents) {
        ::close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<long>(i));
        exited = true;
      }
    if (fds[0].revents) {
      uint64_t count;
      (void)!::read(wake_fd_, &count, sizeof count);
      std::lock_guard lock(mu_);
      if (stop_) {
        for (size_t i = 1; i < fds.size(); ++i) ::close(fds[i].fd);
        return;
      }
      for (int fd : added_) fds.push_back({fd, POLLIN, 0});
      added_.clear();
    }
    if (exited) on_exit_();
  }
}

}  // namespace cp::serve
