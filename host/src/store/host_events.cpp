// The host events log: open under an flock, append one chained event, close. Opening verifies the chain
// (EventLog refuses a log that does not), so a tampered log stops further appends loudly.
#include "store/host_events.hpp"

#include "core/runtime_paths.hpp"
#include "store/event_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace cp::store {

namespace fs = std::filesystem;

nlohmann::json record_host_event(const fs::path& root, const std::string& type, nlohmann::json payload) {
  static std::mutex in_process;  // flock is per open file description; threads of one process queue here
  std::lock_guard<std::mutex> g(in_process);
  fs::path log = core::host_events_log(root);
  fs::create_directories(log.parent_path());
  fs::path lock = log;
  lock += ".lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error("cannot open " + lock.string() + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot lock " + lock.string() + ": " + std::strerror(e));
  }
  try {
    EventLog events(log, kHostEventsRunId);
    auto written = events.append(type, std::move(payload));
    ::close(fd);
    return written;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace cp::store
