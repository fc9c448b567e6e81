// The scheduler's exit watch: a child's exit is noticed when it happens, the child is left for the
// scheduler to reap, and a child that is gone before it is watched is reported at once.
#include "serve/exit_watch.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace cp::serve {
namespace {

struct Calls {
  std::mutex mu;
  std::condition_variable cv;
  int n = 0;
  void hit() {
    std::lock_guard l(mu);
    ++n;
    cv.notify_all();
  }
  bool wait_for(int want, std::chrono::seconds limit) {
    std::unique_lock l(mu);
    return cv.wait_for(l, limit, [&] { return n >= want; });
  }
};

pid_t child_exiting_after(int ms) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::usleep(static_cast<useconds_t>(ms) * 1000);
    ::_exit(7);
  }
  return pid;
}

TEST(ExitWatch, AChildsExitIsReportedAndTheChildIsLeftToReap) {
  Calls calls;
  ExitWatch watch([&] { calls.hit(); });
  pid_t a = child_exiting_after(200), b = child_exiting_after(400);
  watch.add(a);
  watch.add(b);
  ASSERT_TRUE(calls.wait_for(1, std::chrono::seconds(10)));
  ASSERT_TRUE(calls.wait_for(2, std::chrono::seconds(10)));
  // Not reaped by the watch: the scheduler's waitpid still gets each exit status.
  int ws = 0;
  ASSERT_EQ(::waitpid(a, &ws, WNOHANG), a);
  EXPECT_EQ(WEXITSTATUS(ws), 7);
  ASSERT_EQ(::waitpid(b, &ws, WNOHANG), b);
  EXPECT_EQ(WEXITSTATUS(ws), 7);
}

TEST(ExitWatch, AChildGoneBeforeItIsWatchedIsReportedAtOnce) {
  Calls calls;
  ExitWatch watch([&] { calls.hit(); });
  pid_t a = child_exiting_after(0);
  int ws = 0;
  ASSERT_EQ(::waitpid(a, &ws, 0), a);  // reaped: no such process any more
  watch.add(a);
  EXPECT_TRUE(calls.wait_for(1, std::chrono::seconds(10)));
}

}  // namespace
}  // namespace cp::serve
