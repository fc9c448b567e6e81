#include "queue/locks_on_seal.hpp"

#include "queue/queue_backend.hpp"
#include "store/after_seal.hpp"

namespace cp::queue {

using nlohmann::json;

void release_locks_of_sealed_run(const std::filesystem::path& root, const json& manifest) {
  if (!manifest.is_object() || !manifest.contains("queue") || !manifest["queue"].is_object()) return;
  const json& q = manifest["queue"];
  if (!q.contains("item_id") || !q["item_id"].is_string() || !q.contains("attempt") ||
      !q["attempt"].is_number_integer())
    return;
  BackendOptions o;
  o.root = root;
  o.create = false;  // a root without a queue has no locks, and gets no queue files from a seal
  auto backend = open_queue_backend(o);
  if (!backend) return;
  const std::string item_id = q["item_id"].get<std::string>();
  const int attempt = q["attempt"].get<int>();
  // Only the attempt this run is: a manifest names its item, and the queue says which run the attempt is.
  auto snapshot = backend->list();
  const QueueItem* it = snapshot->state.find(item_id);
  if (!it || !it->active() || it->current()->attempt != attempt) return;
  if (it->current()->run_id != manifest.value("run_id", "")) return;
  LockRelease r;
  r.item_id = item_id;
  r.attempt = attempt;
  r.by = "cp-host";
  r.reason = "run " + manifest.value("run_id", "") + " sealed " + manifest.value("status", "");
  backend->release_locks(r);
}

void release_path_locks_on_seal() {
  store::add_seal_observer(release_locks_of_sealed_run);
}

}  // namespace cp::queue
