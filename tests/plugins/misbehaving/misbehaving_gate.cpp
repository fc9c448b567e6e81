// A third-party gate that misbehaves in one way, chosen at build time (MISBEHAVE_*): each variant is its own
// .so, so tests can show that none of them can crash cp-host or pass a run.
#include <cortexpilot/plugin.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

class Misbehaving : public cp::Gate {
 public:
  Misbehaving(cp::Context&, const std::string&) {}
  std::string evaluate(cp::Context&, const std::string&) override {
#if defined(MISBEHAVE_SEGFAULT)
    volatile int* p = nullptr;
    *p = 42;
    return "";
#elif defined(MISBEHAVE_ABORT)
    std::abort();
#elif defined(MISBEHAVE_LOOP)
    volatile unsigned long spin = 0;
    while (true) spin = spin + 1;
#elif defined(MISBEHAVE_FLOOD)
    return std::string(200u << 20, 'x');  // 200 MiB "verdict"
#elif defined(MISBEHAVE_INVALID_JSON)
    return R"({"verdict": "pass", "summary": )";
#elif defined(MISBEHAVE_THROW)
    throw std::runtime_error("gate blew up while judging");
#elif defined(MISBEHAVE_LEAK)
    std::vector<char*> hoard;
    while (true) {  // grows until the worker's address-space limit (or the sanitizer's RSS cap) stops it
      char* block = static_cast<char*>(std::malloc(64u << 20));
      if (!block) throw std::bad_alloc();
      std::memset(block, 1, 64u << 20);
      hoard.push_back(block);
    }
#else
#error "pick a MISBEHAVE_* variant"
#endif
  }
};

}  // namespace

CP_PLUGIN("acme-misbehaving-gate", "0.0.1",
          cp::gate<Misbehaving>(MISBEHAVE_ID, "0.0.1", "A gate that misbehaves, for isolation tests",
                                R"({"type":"object"})", "[]"))
