// Turning what a gate plugin returned into a verdict, fail-closed: anything but a well-formed verdict
// document from a successful call is verdict "error".
#pragma once

#include "plugin/instance.hpp"

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace cp::gates {

// A verdict document valid against schemas/gate_verdict.schema.json. Never "pass" unless the plugin
// returned CP_OK and a valid document saying "pass".
nlohmann::json verdict_from(const plugin::CallOutcome& outcome);

// An "error" verdict document whose summary and single diagnostic say why (rule "fail_closed").
nlohmann::json error_verdict(const std::string& summary);

}  // namespace cp::gates
