#include "serve/access_log.hpp"
#include "core/runtime_paths.hpp"

#include "log/log_lanes.hpp"

#include <nlohmann/json.hpp>

namespace cp::serve {

namespace fs = std::filesystem;

AccessLog::AccessLog(const fs::path& root) {
  log::open_lanes(root);
  path_ = core::logs_dir(root) / "access" / "access.jsonl";
}

AccessLog::~AccessLog() = default;

void AccessLog::write(const AccessRecord& r) {
  log::Event e;
  e.level = r.status >= 500 ? log::Level::error : r.status >= 400 ? log::Level::warn : log::Level::info;
  e.lane = log::Lane::access;
  e.correlation_kind = "request";
  e.correlation_id = r.request_id;
  e.component = "api";
  e.message = r.method + " " + r.path + " " + std::to_string(r.status);
  e.fields = {{"method", r.method},         {"path", r.path},         {"status", r.status},
              {"latency_ms", r.latency_ms}, {"token_id", r.token_id}, {"peer", r.peer}};
  if (r.raw) e.fields["raw"] = true;
  log::emit(e);
}

}  // namespace cp::serve
