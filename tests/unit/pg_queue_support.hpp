// What the PostgreSQL store's tests share: a queue backend on a database, and a plain item to put in it.
#pragma once

#include "queue/queue_backend.hpp"

#include <memory>
#include <string>

namespace cp::test {

inline std::unique_ptr<queue::QueueBackend> pg_queue(const std::string& conninfo) {
  queue::BackendOptions o;
  o.kind = "postgres";
  o.store = conninfo;
  return queue::open_queue_backend(o);
}

// An item of pack `low` whose contract and repository paths are never read (the queue alone is tested).
inline queue::NewItem pg_item(const std::string& id) {
  queue::NewItem n;
  n.item_id = id;
  n.task_id = "task-" + id;
  n.pack = "low";
  n.contract_path = "/c/" + id + ".json";
  n.repo = "/repo";
  return n;
}

}  // namespace cp::test
