#include "serve/access_log.hpp"

#include "queue/queue_state.hpp"
#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <system_error>

namespace cp::serve {

namespace fs = std::filesystem;

AccessLog::AccessLog(const fs::path& root) {
  fs::path dir = root / ".runtime-cache" / "logs" / "access";
  fs::create_directories(dir);
  path_ = dir / "access.jsonl";
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path_.string());
}

AccessLog::~AccessLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AccessLog::write(const AccessRecord& r) {
  nlohmann::json line{{"ts", queue::iso_from_ms(queue::now_ms())},
                      {"level", r.status >= 500   ? "error"
                                : r.status >= 400 ? "warn"
                                                  : "info"},
                      {"lane", "access"},
                      {"correlation_kind", "request"},
                      {"correlation_id", r.request_id},
                      {"component", "api"},
                      {"message", r.method + " " + r.path + " " + std::to_string(r.status)},
                      {"fields",
                       {{"method", r.method},
                        {"path", r.path},
                        {"status", r.status},
                        {"latency_ms", r.latency_ms},
                        {"token_id", r.token_id},
                        {"peer", r.peer}}}};
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> l(mu_);
  (void)store::write_all(fd_, text);
}

}  // namespace cp::serve
