// The codex and claude stream parsers over arbitrary stdout bytes, split into chunks where the first byte
// says, as the host's pipe delivers them. Invariants: nothing throws out of a parser, every emitted event
// payload is a JSON object, and the counters add up (malformed lines never exceed lines).
#include "runners/claude/claude_parser.hpp"
#include "runners/codex/codex_parser.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

template <class Parser, class... Extra>
void drive(std::string_view bytes, size_t cut, Extra&&... extra) {
  cp::plugins::StreamState state;
  cp::plugins::StreamParser::Sinks sinks{[](const std::string& type, const nlohmann::json& payload) {
                                           if (type.empty() || !payload.is_object()) std::abort();
                                           (void)payload.dump(-1, ' ', false,
                                                              nlohmann::json::error_handler_t::replace);
                                         },
                                         [](const std::string&) {}};
  Parser parser(state, sinks, std::forward<Extra>(extra)...);
  cp::plugins::LineSplitter lines(4096);
  auto on_line = [&](std::string_view l) { parser.line(l); };
  lines.feed(bytes.substr(0, cut), state.oversized, on_line);
  lines.feed(bytes.substr(cut), state.oversized, on_line);
  lines.flush(on_line);
  if (state.malformed > state.lines) std::abort();
  (void)state.usage().dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t cut = bytes.empty() ? 0 : data[0] % (bytes.size() + 1);
  drive<cp::plugins::CodexParser>(bytes, cut,
                                  nlohmann::json{{"input", 1.25}, {"cached_input", 0.125}, {"output", 10.0}});
  drive<cp::plugins::ClaudeParser>(bytes, cut);
  return 0;
}
