// The REST API's request handling without HTTP: method, path and query from the input, answered by the
// very Api the server uses, over a real (empty) runtime root. Invariants: nothing throws out, every status
// is a valid HTTP status, every JSON answer parses, and safe_subpath never yields a path outside its base.
#include "queue/queue_service.hpp"
#include "serve/api.hpp"
#include "serve/metrics.hpp"
#include "serve/run_catalog.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace {

struct World {
  fs::path root;
  cp::serve::TokenStore tokens;
  std::unique_ptr<cp::serve::RunCatalog> catalog;
  std::unique_ptr<cp::queue::QueueService> queue;
  cp::serve::Metrics metrics;
  std::unique_ptr<cp::serve::Api> api;
  World() {
    char tmpl[] = "/tmp/cp-fuzz-api-XXXXXX";
    root = ::mkdtemp(tmpl);
    fs::create_directories(root / ".runtime-cache/cortexpilot/runs/r1/artifacts/a");
    catalog = std::make_unique<cp::serve::RunCatalog>(root);
    queue = std::make_unique<cp::queue::QueueService>(root, nullptr);
    cp::serve::ApiConfig cfg;
    cfg.root = root;
    cfg.open_reads = true;
    cfg.openapi = "{}";
    api = std::make_unique<cp::serve::Api>(cfg, tokens, *catalog, *queue, nullptr, nullptr, metrics);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World w;
  std::string in(reinterpret_cast<const char*>(data), size);
  // "METHOD path?query" — the first space and '?' split it.
  cp::serve::ApiRequest req;
  size_t sp = in.find(' ');
  req.method = sp == std::string::npos ? "GET" : in.substr(0, sp);
  if (req.method != "GET" && req.method != "HEAD") req.method = "GET";  // reads only: writes need a token
  std::string target = sp == std::string::npos ? in : in.substr(sp + 1);
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::string query = target.substr(q + 1);
    size_t i = 0;
    while (i <= query.size()) {
      size_t amp = query.find('&', i);
      if (amp == std::string::npos) amp = query.size();
      std::string kv = query.substr(i, amp - i);
      size_t eq = kv.find('=');
      auto k = cp::serve::url_decode(kv.substr(0, eq), true);
      auto v = cp::serve::url_decode(eq == std::string::npos ? "" : kv.substr(eq + 1), true);
      if (k && v) req.query[*k] = *v;
      i = amp + 1;
    }
  }
  cp::serve::ApiResponse r = w.api->handle(req);
  if (r.status < 100 || r.status > 599) std::abort();
  if (!r.sse && r.content_type == "application/json" && !r.body.empty() &&
      nlohmann::json::parse(r.body, nullptr, false).is_discarded())
    std::abort();

  // The path guard on its own: whatever it accepts stays inside the base.
  std::string why;
  fs::path base = w.root / ".runtime-cache/cortexpilot/runs/r1/artifacts";
  if (auto p = cp::serve::safe_subpath(base, req.path, why)) {
    auto rel = p->lexically_normal().lexically_relative(base);
    if (rel.empty() || *rel.begin() == "..") std::abort();
  }
  return 0;
}
