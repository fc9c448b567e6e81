#include "chain/chain_record.hpp"

#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "core/schema_catalog.hpp"
#include "store/bundle.hpp"

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path chain_record_dir(const fs::path& root, const std::string& run_id) {
  return core::queue_chains_dir(root) / run_id;
}

std::optional<json> read_chain_record(const fs::path& root, const std::string& run_id) {
  if (!store::valid_run_id(run_id)) return std::nullopt;
  json rec = core::read_json_file(chain_record_dir(root, run_id) / "chain.json");
  if (!rec.is_object() || !core::schema("queued_chain").validate(rec).empty()) return std::nullopt;
  if (rec["run_id"] != run_id) return std::nullopt;
  return rec;
}

json read_chain_cancel(const fs::path& root, const std::string& run_id) {
  if (!store::valid_run_id(run_id)) return nullptr;
  json c = core::read_json_file(chain_record_dir(root, run_id) / "cancel.json");
  if (!c.is_object() || !core::schema("queued_chain_cancel").validate(c).empty() || c["run_id"] != run_id)
    return nullptr;
  return c;
}

ChainSpec spec_of_record(const json& record, const fs::path& root) {
  ChainSpec spec;
  spec.doc = record["document"];
  spec.chain_id = record.value("chain_id", "");
  spec.workflow_id = record.value("workflow_id", "");
  spec.require_pm_loop = record.value("require_pm_loop", true);
  const fs::path dir = chain_record_dir(root, record.value("run_id", ""));
  for (const auto& s : record["steps"]) {
    Step st;
    st.id = s["step_id"];
    st.kind = s["kind"];
    st.role = s["role"];
    for (const auto& c : s.value("contracts", json::array()))
      st.contracts.push_back(dir / c.get<std::string>());
    st.quorum = s.value("quorum", static_cast<int>(st.contracts.size()));
    st.handoff = s.value("handoff", json());
    st.depends_on = s.value("depends_on", std::vector<std::string>{});
    st.ordered_after = s.value("ordered_after", std::vector<std::string>{});
    st.parallel_group = s.value("parallel_group", "");
    st.continue_on_fail = s.value("continue_on_fail", false);
    st.exclusive_paths = s.value("exclusive_paths", std::vector<std::string>{});
    st.lock_paths = s.value("lock_paths", std::vector<std::string>{});
    spec.steps.push_back(std::move(st));
  }
  return spec;
}

std::optional<RecordStepRef> step_of_item(const json& record, const std::string& item_id) {
  const json& steps = record["steps"];
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& items = steps[i]["items"];
    for (size_t j = 0; j < items.size(); ++j)
      if (items[j] == item_id) return RecordStepRef{i, j};
  }
  return std::nullopt;
}

namespace {

bool older_than(const fs::path& p, std::chrono::seconds age) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return false;
  return fs::file_time_type::clock::now() - t > age;
}

}  // namespace

std::optional<std::string> taken_chain_with_origin(const fs::path& root, const std::string& origin,
                                                   const queue::QueueState& queue) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(core::queue_chains_dir(root), ec)) {
    const std::string id = e.path().filename().string();
    if (!store::valid_run_id(id)) continue;
    auto rec = read_chain_record(root, id);
    if (!rec || rec->value("origin", "") != origin) continue;
    if (queue.find(id) || fs::exists(fs::symlink_status(core::runs_dir(root) / id, ec))) return id;
  }
  return std::nullopt;
}

size_t sweep_unqueued_chains(const fs::path& root, const queue::QueueState& queue,
                             std::chrono::seconds min_age) {
  size_t swept = 0;
  std::error_code ec;
  const fs::path dir = core::queue_chains_dir(root);
  for (const auto& e : fs::directory_iterator(dir / ".incoming", ec)) {
    if (!older_than(e.path(), min_age)) continue;
    std::error_code rm;
    if (fs::remove_all(e.path(), rm) != static_cast<std::uintmax_t>(-1) && !rm) ++swept;
  }
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string id = e.path().filename().string();
    if (!store::valid_run_id(id) || e.is_symlink(ec) || !e.is_directory(ec)) continue;
    if (queue.find(id) || fs::exists(fs::symlink_status(core::runs_dir(root) / id, ec))) continue;
    if (!older_than(e.path(), min_age)) continue;
    // Only a folder that says it is this chain's record: nothing else under queue/chains/ is ours to remove.
    json rec = core::read_json_file(e.path() / "chain.json");
    if (!rec.is_object() || rec.value("kind", "") != "queued_chain" || rec.value("run_id", "") != id)
      continue;
    std::error_code rm;
    if (fs::remove_all(e.path(), rm) != static_cast<std::uintmax_t>(-1) && !rm) ++swept;
  }
  return swept;
}

}  // namespace cp::chain
