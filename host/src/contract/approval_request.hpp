// What a compiled pack asks of a run that passed its gates and must wait for people: the manifest's
// `approval` section (schemas/run_manifest.schema.json).
#pragma once

#include <nlohmann/json.hpp>

namespace cp::contract {

// {state: "pending", requested_at, approvers_required, approvals: [], deadline?} for a run of
// `compiled_pack` that starts waiting now; the deadline is now + the pack's approval.deadline_sec.
nlohmann::json approval_request(const nlohmann::json& compiled_pack);

}  // namespace cp::contract
