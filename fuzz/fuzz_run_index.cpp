// The catalogue's persistent index, as anything under the runtime root may have made it: arbitrary bytes with
// their checksum set (so the fuzzer reaches the checks behind it). Loading must refuse or give a table whose
// every row can be listed, summarised and ordered without reading outside what was loaded.
#include "serve/run_index_file.hpp"
#include "serve/run_table.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string why;
  auto image = cp::serve::parse_run_index(
      cp::serve::reseal_run_index(std::string(reinterpret_cast<const char*>(data), size)), why);
  if (!image) {
    if (why.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  const cp::serve::RunTable& t = image->table;
  for (uint32_t r = 0; r < t.capacity(); ++r) {
    if (t.row(r).flags & cp::serve::RunTable::kDead) continue;
    if (t.find(t.run_id(r)) != r) std::abort();
    (void)t.fields(r).dump();
    (void)t.summary(r);
    if (r > 0) (void)t.older(r - 1, r);
    cp::store::RunQuery q;
    q.text = "a";
    q.status = "sealed";
    if (auto s = t.screen(q)) (void)t.matches(r, *s);
  }
  return 0;
}
