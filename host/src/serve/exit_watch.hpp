// Wakes the scheduler the moment one of its children exits, rather than at its next tick: a run that ends
// frees its slot for the next item at once. A thread polls a pidfd per child (Linux 5.3+) and an eventfd
// that says the set changed; it never reaps (the scheduler does, with waitpid). Without pidfds, nothing is
// watched and the tick alone notices exits, as it always did.
#pragma once

#include <sys/types.h>

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cp::serve {

class ExitWatch {
 public:
  explicit ExitWatch(std::function<void()> on_exit);  // called on the watcher's thread
  ~ExitWatch();
  ExitWatch(const ExitWatch&) = delete;
  ExitWatch& operator=(const ExitWatch&) = delete;

  void add(pid_t pid);  // watch a child just spawned; a child already gone calls on_exit at once

 private:
  void loop();
  std::function<void()> on_exit_;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<int> added_;  // pidfds handed to the watcher, not yet polled
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cp::serve
