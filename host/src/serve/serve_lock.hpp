// One serve per runtime root: serve.lock (an flock held while serve runs) and serve.json (pid, URL, start
// time), which tells a second serve, and an operator, who holds the root.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace cp::serve {

class ServeLock {
 public:
  // Takes the lock of `root` without waiting; null when another process holds it (or it cannot be made).
  static std::unique_ptr<ServeLock> take(const std::filesystem::path& root);
  ~ServeLock();  // releases the lock
  ServeLock(const ServeLock&) = delete;
  ServeLock& operator=(const ServeLock&) = delete;

  // " (pid N, URL)" of the serve holding `root`, read from its serve.json; "" when there is none.
  static std::string holder(const std::filesystem::path& root);

  // Writes serve.json for this process, listening on `url`.
  void publish(const std::string& url, bool scheduler_on) const;
  // Removes serve.json (before the lock is released).
  void withdraw() const;

 private:
  ServeLock(std::filesystem::path root, int fd) : root_(std::move(root)), fd_(fd) {}
  std::filesystem::path root_;
  int fd_;
};

}  // namespace cp::serve
