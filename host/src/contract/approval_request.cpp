#include "contract/approval_request.hpp"
#include "core/clock.hpp"

#include <cstdint>

namespace cp::contract {

using nlohmann::json;

json approval_request(const json& compiled_pack) {
  json cfg = compiled_pack.value("approval", json::object());
  json a{{"state", "pending"},
         {"requested_at", core::now_utc_iso()},
         {"approvers_required", cfg.value("approvers", 1)},
         {"approvals", json::array()}};
  if (cfg.contains("deadline_sec"))
    a["deadline"] = core::iso_from_ms(core::now_ms() + cfg["deadline_sec"].get<int64_t>() * 1000);
  return a;
}

}  // namespace cp::contract
