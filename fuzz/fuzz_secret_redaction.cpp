// The secret scanner of what serve hands out: arbitrary bytes as a patch, a log or a report. It must not
// throw, must never make a text longer (the API's size limit relies on it), must leave a text without
// secrets byte for byte as it was, and must leave nothing a second pass would find. The same bytes as JSON
// (when they parse) go through the string walk that redacts events.
#include "serve/secret_redaction.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string text = input;
  cp::serve::RedactionCounts c = cp::serve::redact_secrets(text);
  if (text.size() > input.size()) std::abort();
  if (c.total() == 0 && text != input) std::abort();
  if (c.total() > 0 && text == input) std::abort();
  std::string again = text;
  if (cp::serve::redact_secrets(again).total() != 0 || again != text) std::abort();

  nlohmann::json j = nlohmann::json::parse(input, nullptr, false);
  if (!j.is_discarded()) {
    cp::serve::redact_json_strings(j);
    nlohmann::json k = j;
    if (cp::serve::redact_json_strings(k).total() != 0) std::abort();
  }
  return 0;
}
