// The events.jsonl recovery reader: arbitrary bytes as a run's log after a crash. verify_event_log must
// report without throwing; when it says the only problem is a torn tail, reopening the log for appending
// truncates exactly that and the log then verifies, with the same events, and accepts a new event.
#include "store/event_log.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    char tmpl[] = "/tmp/cp-fuzz-events-XXXXXX";
    return fs::path(::mkdtemp(tmpl));
  }();
  fs::path file = dir / "events.jsonl";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  cp::store::ChainCheck c = cp::store::verify_event_log(file);
  if (c.valid_bytes > size) std::abort();
  if (c.ok || c.torn_tail) {
    try {
      cp::store::EventLog log(file, "fuzz-run");
      if (log.count() != c.events || log.truncated_bytes() != size - c.valid_bytes) std::abort();
      log.append("FUZZ_APPENDED", {{"n", 1}});
    } catch (const std::exception&) {
      // A log whose run id differs, or a chain problem beyond the tail: refused, which is the point.
      return 0;
    }
    cp::store::ChainCheck again = cp::store::verify_event_log(file);
    if (!again.ok || again.events != c.events + 1) std::abort();
  }
  return 0;
}
