#include "queue/queue_backend.hpp"
#include "core/runtime_paths.hpp"

#include "queue/log_queue_backend.hpp"
#include "queue/pg_op_log.hpp"
#include "queue/queue_store.hpp"

#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>

namespace cp::queue {

namespace fs = std::filesystem;

const char* to_string(Change c) {
  switch (c) {
    case Change::applied:
      return "applied";
    case Change::unchanged:
      return "unchanged";
    case Change::not_found:
      return "not_found";
    case Change::refused:
      return "refused";
  }
  return "?";
}

StoreChoice configured_store() {
  const char* env = std::getenv("CP_HOST_STORE");
  std::string s = env ? env : "";
  if (s.empty() || s == "jsonl") return {"jsonl", ""};
  if (s.rfind("postgres://", 0) == 0 || s.rfind("postgresql://", 0) == 0 || s.find('=') != std::string::npos)
    return {"postgres", s};
  throw std::invalid_argument(
      "CP_HOST_STORE is neither \"jsonl\" nor a PostgreSQL connection string (postgres://USER@HOST/DB)");
}

std::unique_ptr<QueueBackend> open_queue_backend(const BackendOptions& given) {
  BackendOptions o = given;
  if (o.kind.empty()) {
    StoreChoice c = configured_store();
    o.kind = c.kind;
    o.store = c.store;
  }
  if (o.kind == "jsonl") {
    if (!o.create && !fs::exists(core::queue_log(o.root))) return nullptr;
    return std::make_unique<LogQueueBackend>(std::make_unique<QueueStore>(core::runtime_dir(o.root)));
  }
  if (o.kind == "postgres") return std::make_unique<LogQueueBackend>(std::make_unique<PgOpLog>(o.store));
  throw std::invalid_argument("unknown queue backend '" + o.kind + "' (known: jsonl, postgres)");
}

std::vector<PathLock> list_locks(QueueBackend& backend, int64_t now) {
  return held_locks(backend.list()->state, now != 0 ? now : now_ms());
}

std::vector<PathLock> list_locks(const fs::path& root, int64_t now) {
  BackendOptions o;
  o.root = root;
  o.create = false;
  auto backend = open_queue_backend(o);
  if (!backend) return {};
  return list_locks(*backend, now);
}

std::string new_item_id() {
  std::string ts = iso_from_ms(now_ms());  // 2026-11-25T10:15:00.123Z
  std::string compact;
  for (char c : ts.substr(0, 19))
    if (c != '-' && c != ':') compact += c;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char hex[8];
  std::snprintf(hex, sizeof hex, "%06x", static_cast<unsigned>(rng() & 0xffffff));
  return "q-" + compact + "Z-" + hex;
}

}  // namespace cp::queue
