// libFuzzer target for `cp-host runs verify` (store::verify_bundle) over mutated sealed bundles.
//
// A small bundle is sealed once with a key of the fuzzer's own. Each input then rewrites, appends to,
// splices into or truncates one of its files (or adds one), and the bundle is verified. Beyond "no crash,
// no hang, no leak" the target checks the seal's promise: a bundle whose bytes differ from the sealed ones
// never verifies as intact, and the untouched bundle always does.
#include "core/sha256.hpp"
#include "store/bundle_seal.hpp"
#include "store/bundle_verify.hpp"
#include "store/event_log.hpp"
#include "store/host_key.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Fixture {
  fs::path dir;                              // the bundle
  std::map<std::string, std::string> files;  // what was sealed, byte for byte
  std::unique_ptr<cp::store::KeyRing> keys;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    char tmpl[] = "/tmp/cp-fuzz-bundle-XXXXXX";
    fs::path base = ::mkdtemp(tmpl);
    cp::store::set_key_dir(base / "keys");
    auto key = cp::store::HostKey::load_or_create(base / "keys");
    x.dir = base / "runs" / "fuzz-run-1";
    fs::create_directories(x.dir / "reports");
    json contract{{"contract", {{"task_id", "t"}, {"allowed_paths", {"src/"}}}},
                  {"pack", {{"pack_id", "p"}}}};
    put(x.dir / "contract.json", contract.dump());
    put(x.dir / "reports/gate_diff_scope.json", R"({"gate_id":"diff_scope","verdict":"fail","summary":"x"})");
    put(x.dir / "artifacts/diff.patch", "diff --git a/src/a b/src/a\n+hello\n");
    cp::store::EventLog log(x.dir / "events.jsonl", "fuzz-run-1");
    log.append("RUN_STARTED", {{"task_id", "t"}});
    log.append("GATE_FAILED", {{"gate_id", "diff_scope"}});
    json manifest{
        {"schema_version", 1},
        {"run_id", "fuzz-run-1"},
        {"task_id", "t"},
        {"status", "sealed"},
        {"verdict", "denied"},
        {"reason", "diff_scope failed"},
        {"contract_sha256", cp::core::sha256_hex(json::parse(slurp(x.dir / "contract.json")).dump())},
        {"gates", {{{"gate_id", "diff_scope"}, {"verdict", "fail"}}}},
        {"reports", {{"gate_diff_scope", "reports/gate_diff_scope.json"}}}};
    cp::store::write_seal(x.dir, log, "RUN_SEALED",
                          {{"status", "sealed"}, {"verdict", "denied"}, {"reason", "x"}}, manifest, *key);
    for (const char* rel : {"manifest.json", "events.jsonl", "seal.json", "contract.json",
                            "reports/gate_diff_scope.json", "artifacts/diff.patch"})
      x.files[rel] = slurp(x.dir / rel);
    x.keys = std::make_unique<cp::store::KeyRing>(cp::store::KeyRing::of_dir(base / "keys"));
    if (!cp::store::verify_bundle(x.dir, *x.keys).ok()) std::abort();  // the fixture itself must verify
    return x;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = fixture();
  // Back to the sealed bundle.
  std::error_code ec;
  fs::remove(f.dir / "artifacts/extra.txt", ec);
  for (const auto& [rel, text] : f.files) put(f.dir / rel, text);
  if (size < 2) return 0;
  static const char* kTargets[] = {"manifest.json",
                                   "events.jsonl",
                                   "seal.json",
                                   "contract.json",
                                   "reports/gate_diff_scope.json",
                                   "artifacts/diff.patch",
                                   "artifacts/extra.txt"};
  const std::string rel = kTargets[data[0] % 7];
  const std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
  std::string text = f.files.count(rel) ? f.files[rel] : std::string();
  switch (data[1] % 4) {
    case 0:
      text = rest;
      break;
    case 1:
      text += rest;
      break;
    case 2: {  // splice at an offset the first two bytes of `rest` name
      size_t at = rest.size() >= 2 ? (static_cast<uint8_t>(rest[0]) << 8 | static_cast<uint8_t>(rest[1])) : 0;
      at = text.empty() ? 0 : at % (text.size() + 1);
      std::string piece = rest.size() >= 2 ? rest.substr(2) : rest;
      text = text.substr(0, at) + piece +
             (at + piece.size() < text.size() ? text.substr(at + piece.size()) : "");
      break;
    }
    case 3:
      text = text.substr(0, rest.empty() ? 0 : static_cast<uint8_t>(rest[0]) % (text.size() + 1));
      break;
  }
  put(f.dir / rel, text);
  const bool changed = !f.files.count(rel) || f.files[rel] != text;
  cp::store::BundleCheck c = cp::store::verify_bundle(f.dir, *f.keys);
  if (changed && c.ok()) {
    std::fprintf(stderr, "a changed %s verified as intact\n", rel.c_str());
    std::abort();
  }
  if (!changed && !c.ok()) {
    std::fprintf(stderr, "the untouched bundle did not verify: %s\n",
                 c.problems.empty() ? "?" : c.problems.front().c_str());
    std::abort();
  }
  return 0;
}
