// The catalogue of cp-host's own schemas (schemas/*.schema.json, compiled into the binary). Each schema
// is compiled on first use, once per process, and shared by every thread.
#pragma once

#include "core/json_schema.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace cp::core {

// The compiled schema named `name` ("task_contract", "pack", "event", ...). Throws std::out_of_range for an
// unknown name.
const JsonSchema& schema(std::string_view name);

// The source text of a schema, or empty.
std::string_view schema_text(std::string_view name);

// Every schema name, sorted.
std::vector<std::string> schema_names();

}  // namespace cp::core
