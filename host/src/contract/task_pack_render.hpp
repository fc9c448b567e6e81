// A task pack's chain made concrete with field values, as the host sees it: what a plan that names the pack
// must be, but for its words. The `template` planner renders the same way (plugins/planners/template/
// pack_template.hpp, which a plugin cannot share with the host); the planners' tests compile every shipped
// pack's plan against this rendering, so the two cannot drift apart unnoticed.
//
// Every {{field}} of a text is replaced by the field's value, once: a value holding "{{other}}" stays those
// characters. An array item that is exactly "{{field}}" takes a list field's items (or the one value;
// nothing when the field has none). A step with "when": FIELD is kept only when that field has a value (not
// empty, not false, not 0).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace cp::contract {

// The values a plan of `pack` is rendered with: the plan's fields, and each field the plan leaves out that
// has a default, its default (as the template planner fills them).
nlohmann::json task_pack_values(const nlohmann::json& pack, const nlohmann::json& fields);

// The plan bundle `pack` makes of `values`: schema_version, task_pack, title, summary, fields, steps, and
// baseline_ref, workflow_id and require_pm_loop when its chain has them.
nlohmann::json render_task_pack_plan(const nlohmann::json& pack, const nlohmann::json& values);

}  // namespace cp::contract
