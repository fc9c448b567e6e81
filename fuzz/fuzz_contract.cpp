// Contract parsing and validation: bytes -> depth guard -> JSON -> which schema applies -> schema checks ->
// the line of every reported pointer. What `cp-host validate` and `POST /api/runs` do with untrusted input.
// Invariants: nothing throws out, every violation's pointer resolves to a line inside the text.
#include "contract/file_kind.hpp"
#include "core/json_depth.hpp"
#include "core/json_locator.hpp"
#include "core/schema_catalog.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!cp::core::json_depth_ok(text)) return 0;  // refused unparsed, as the host does
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return 0;
  std::string kind = cp::contract::detect_schema("contracts/fuzz.json", doc);
  int lines = 1;
  for (char c : text) lines += c == '\n';
  for (const char* schema : {"task_contract", "task_chain", "pack"}) {
    for (const auto& v : cp::core::schema(schema).validate(doc)) {
      int line = cp::core::line_of_pointer(text, v.pointer);
      if (line < 1 || line > lines) std::abort();  // a diagnostic that points outside the file
    }
  }
  (void)kind;
  return 0;
}
