#include "serve/serve_lock.hpp"

#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "store/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

std::unique_ptr<ServeLock> ServeLock::take(const fs::path& root) {
  int fd = ::open(core::serve_lock_file(root).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<ServeLock>(new ServeLock(root, fd));
}

ServeLock::~ServeLock() {
  ::close(fd_);
}

std::string ServeLock::holder(const fs::path& root) {
  json info = core::read_json_file(core::serve_info_file(root));
  if (!info.is_object()) return "";
  return " (pid " + std::to_string(info.value("pid", 0)) + ", " + info.value("url", "") + ")";
}

void ServeLock::publish(const std::string& url, bool scheduler_on) const {
  store::write_json_atomic(core::serve_info_file(root_),
                           json{{"pid", static_cast<long>(::getpid())},
                                {"url", url},
                                {"started_at", core::iso_from_ms(core::now_ms())},
                                {"scheduler", scheduler_on ? "on" : "off"}});
}

void ServeLock::withdraw() const {
  std::error_code ec;
  fs::remove(core::serve_info_file(root_), ec);
}

}  // namespace cp::serve
