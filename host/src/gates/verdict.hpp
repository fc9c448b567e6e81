// Turning what a gate plugin returned into a verdict, fail-closed: anything but a well-formed verdict
// document from a successful call is verdict "error".
#pragma once

#include "plugin/instance.hpp"

#include <nlohmann/json_fwd.hpp>

namespace cp::gates {

// A verdict document valid against schemas/gate_verdict.schema.json. Never "pass" unless the plugin
// returned CP_OK and a valid document saying "pass".
nlohmann::json verdict_from(const plugin::CallOutcome& outcome);

}  // namespace cp::gates
