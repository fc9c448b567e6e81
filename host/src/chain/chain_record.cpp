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

}  // namespace cp::chain
