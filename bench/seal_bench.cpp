// What sealing a run bundle costs, and what verifying one costs, on a bundle of realistic size: 16 sealed
// files (a 20 KB diff.patch, five gate reports, task_result and proof pack, ~200 KB of tool and test logs,
// the compiled contract), 14 events before the seal, a ~4 KB manifest.
//  - WriteSeal: store::write_seal as a run's end does it (list and hash every file, sign, write seal.json,
//    the ledger entry, the event and manifest.json, each fsync'd): the signing cost per run. Between
//    iterations (not timed) the log is put back to its 14 unsealed events and seal.json removed.
//  - ListAndHashFiles: store::list_bundle_files alone, the hashing part of both the seal and the verify.
//  - Sign / VerifySignature: HostKey::sign and PublicKey::verify of the 80-byte seal message, alone.
//  - VerifyBundleCold: store::verify_bundle with no cached result (the files are in the page cache): what
//    verify-on-read costs each time a bundle is read without the serve cache.
//  - Fingerprint: store::bundle_fingerprint, all a read costs while serve's cached result still holds.
// With CP_SEAL_BENCH_DIR set, the bundle and its key are made there and kept (bench/seal_cost.sh runs the
// public tools on the same files); otherwise in a temporary folder that is removed.
#include "core/sha256.hpp"
#include "store/bundle.hpp"
#include "store/bundle_seal.hpp"
#include "store/bundle_verify.hpp"
#include "store/event_log.hpp"
#include "store/host_key.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using nlohmann::json;
namespace store = cp::store;
namespace core = cp::core;

namespace {

// Deterministic text of about `bytes` bytes that reads like a log: numbered lines of varied words.
std::string log_text(size_t bytes, uint32_t seed, const std::string& prefix) {
  static const char* words[] = {"build", "test",  "ok",     "passed", "compile", "src/greeting.sh", "warning",
                                "link",  "cache", "target", "ms",     "assert",  "fixture",         "run"};
  std::string out;
  uint32_t x = seed * 2654435761u + 1;
  for (int line = 1; out.size() < bytes; ++line) {
    out += prefix + std::to_string(line) + ":";
    for (int w = 0; w < 10; ++w) {
      x = x * 1664525u + 1013904223u;
      out += ' ';
      out += words[(x >> 16) % (sizeof words / sizeof *words)];
    }
    out += '\n';
  }
  out.resize(bytes);
  out.back() = '\n';
  return out;
}

std::string diff_text(size_t bytes) {
  std::string out;
  for (int file = 0; out.size() < bytes; ++file) {
    std::string p = "src/module_" + std::to_string(file) + ".sh";
    out += "diff --git a/" + p + " b/" + p + "\nindex 3f2a1c4..9b8e7d6 100644\n--- a/" + p + "\n+++ b/" + p +
           "\n@@ -1,40 +1,42 @@\n";
    std::string body = log_text(1200, static_cast<uint32_t>(file), " line ");
    std::istringstream in(body);
    int i = 0;
    for (std::string l; std::getline(in, l); ++i)
      out += (i % 7 == 3 ? "-" : i % 7 == 4 ? "+" : " ") + l + "\n";
  }
  out.resize(bytes);
  out.back() = '\n';
  return out;
}

json gate_report(const std::string& id, int n) {
  json checks = json::array();
  for (int i = 0; i < n; ++i)
    checks.push_back({{"name", id + "_check_" + std::to_string(i)},
                      {"verdict", "pass"},
                      {"detail", log_text(120, static_cast<uint32_t>(i), "")}});
  return {{"schema_version", 1},       {"gate_id", id},    {"verdict", "pass"},
          {"summary", id + " passed"}, {"checks", checks}, {"duration_ms", 12}};
}

struct Fixture {
  fs::path root, dir;
  bool keep = false;
  std::string run_id = "seal-bench-20261201T000000Z-000001";
  json manifest;                // the manifest the seal writes (without `events`)
  std::string unsealed_events;  // events.jsonl before the seal
  std::shared_ptr<const store::HostKey> key;
  std::unique_ptr<store::KeyRing> ring;
  std::string message;  // a seal message, for Sign / VerifySignature
  std::string signature;

  Fixture() {
    if (const char* d = std::getenv("CP_SEAL_BENCH_DIR"); d && *d) {
      root = d;
      keep = true;
      fs::create_directories(root);
    } else {
      char tmpl[] = "/tmp/cp-bench-seal-XXXXXX";
      root = ::mkdtemp(tmpl);
    }
    store::set_key_dir(root / "keys");
    key = store::HostKey::load_or_create(root / "keys");
    ring = std::make_unique<store::KeyRing>(store::KeyRing::of_dir(root / "keys"));

    json contract{
        {"schema_version", 1},
        {"contract",
         {{"task_id", "seal-bench"},
          {"title", "Fix the greeting typo in the sample repo"},
          {"allowed_paths", {"src/"}},
          {"acceptance_tests", {{{"name", "unit"}, {"cmd", "sh tests/run.sh"}, {"must_pass", true}}}},
          {"runtime_options", {{"runner", "tool"}, {"pack", "medium"}}}}},
        {"gates", {"diff_scope", "acceptance_tests", "forbidden_actions", "required_outputs", "policy"}},
        {"pack", {{"name", "medium"}, {"sandbox", {{"network", "deny"}}}}},
        {"policies", {{"command_allowlist", log_text(1500, 7, "allow ")}}}};
    json gates = json::array();
    json reports{{"diff", "artifacts/diff.patch"},
                 {"task_result", "reports/task_result.json"},
                 {"proof_pack", "reports/proof_pack.json"}};
    for (std::string g :
         {"diff_scope", "acceptance_tests", "forbidden_actions", "required_outputs", "policy"}) {
      gates.push_back({{"gate_id", g},
                       {"report", "reports/gate_" + g + ".json"},
                       {"required", true},
                       {"summary", g + " passed"},
                       {"verdict", "pass"}});
      reports["gate_" + g] = "reports/gate_" + g + ".json";
    }
    json plugins = json::array();
    for (std::string p :
         {"tool", "diff_scope", "acceptance_tests", "forbidden_actions", "required_outputs", "policy"})
      plugins.push_back({{"id", p},
                         {"kind", p == "tool" ? "runner" : "gate"},
                         {"version", "0.1.0"},
                         {"library", "cp-" + p + " 0.1.0"}});
    std::string rt = (root / ".runtime-cache/cortexpilot").string();
    manifest = {{"schema_version", 1},
                {"run_id", run_id},
                {"task_id", "seal-bench"},
                {"runner", "tool"},
                {"pack", "medium"},
                {"repo", (root / "repo").string()},
                {"baseline_ref", "HEAD"},
                {"baseline_commit", std::string(40, 'b')},
                {"status", "running"},
                {"created_at", "2026-12-01T00:00:00.000Z"},
                {"started_at", "2026-12-01T00:00:00.050Z"},
                {"host_pid", 4242},
                {"plugins", plugins},
                {"sandbox",
                 {{"enabled", true},
                  {"kind", "landlock+seccomp"},
                  {"landlock_abi", 7},
                  {"network", "deny"},
                  {"write", {rt + "/worktrees/" + run_id, rt + "/tmp/" + run_id}},
                  {"hidden", {root.string(), (root / "keys").string()}},
                  {"rules", 201}}},
                {"worktree", rt + "/worktrees/" + run_id}};
    auto b = store::Bundle::create(root, run_id, contract, manifest);
    dir = b->dir();

    // The files a run leaves: ~200 KB of logs, a 20 KB patch, reports.
    b->write_text("artifacts/diff.patch", diff_text(20 * 1024));
    b->write_json("artifacts/changed_files.json",
                  json::array({{{"path", "src/greeting.sh"}, {"status", "modified"}},
                               {{"path", "src/module_1.sh"}, {"status", "modified"}}}));
    b->write_text("artifacts/tool/0.stdout.log", log_text(80 * 1024, 1, "out "));
    b->write_text("artifacts/tool/0.stderr.log", log_text(10 * 1024, 2, "err "));
    b->write_text("artifacts/tool/1.stdout.log", log_text(40 * 1024, 3, "out "));
    b->write_text("artifacts/tool/1.stderr.log", log_text(5 * 1024, 4, "err "));
    b->write_text("artifacts/tests/unit/stdout.log", log_text(50 * 1024, 5, "test "));
    b->write_text("artifacts/tests/unit/stderr.log", log_text(15 * 1024, 6, "test "));
    int n = 4;
    for (const auto& g : gates)
      b->write_json(g["report"].get<std::string>(), gate_report(g["gate_id"], n += 3));
    b->write_json(
        "reports/task_result.json",
        {{"schema_version", 1},
         {"run_id", run_id},
         {"status", "completed"},
         {"commands", json::array({{{"command", "sed -i s/Helo/Hello/ src/greeting.sh"}, {"exit_code", 0}},
                                   {{"command", "sh tests/run.sh"}, {"exit_code", 0}},
                                   {{"command", "make"}, {"exit_code", 0}}})},
         {"notes", log_text(2500, 8, "note ")}});
    b->write_json("reports/proof_pack.json", {{"run_id", run_id},
                                              {"gates", gates},
                                              {"diff_sha256", std::string(64, 'c')},
                                              {"summary", log_text(1500, 9, "proof ")}});

    // The events of a run up to its seal.
    auto& ev = b->events();
    ev.append("RUN_STARTED", {{"task_id", "seal-bench"}, {"runner", "tool"}, {"pack", "medium"}});
    ev.append("WORKSPACE_CREATED", {{"path", rt + "/worktrees/" + run_id}, {"baseline_ref", "HEAD"}});
    ev.append("SANDBOX_APPLIED", {{"kind", "landlock+seccomp"}, {"network", "deny"}});
    ev.append("RUNNER_STARTED", {{"runner", "tool"}, {"version", "0.1.0"}});
    for (int i = 0; i < 3; ++i)
      ev.append("COMMAND_EXECUTED",
                {{"index", i}, {"command", "sh step" + std::to_string(i)}, {"exit_code", 0}});
    ev.append("RUNNER_FINISHED", {{"status", "completed"}, {"commands", 3}});
    ev.append("DIFF_COLLECTED", {{"files", 2}, {"patch_bytes", 20 * 1024}});
    for (const auto& g : gates) ev.append("GATE_PASSED", g);
    ev.append("RUN_FINISHED", {{"verdict", "success"}});
    b.reset();  // releases the bundle's lock, as a run's end does before the seal is read back
    store::clear_live_marker(root, run_id);

    manifest["status"] = "sealed";
    manifest["verdict"] = "success";
    manifest["reason"] = "the runner completed and every required gate passed";
    manifest["finished_at"] = "2026-12-01T00:00:01.000Z";
    manifest["gates"] = gates;
    manifest["reports"] = reports;
    manifest["contract_sha256"] = core::sha256_hex(json::parse(read(dir / "contract.json")).dump());
    unsealed_events = read(dir / "events.jsonl");
    seal();  // sealed from here on; WriteSeal leaves it sealed again after every iteration
    json s = json::parse(read(dir / "seal.json"));
    message = store::seal_message(s["event"]["hash"].get<std::string>());
    signature = s["signature"].get<std::string>();
    auto check = store::verify_bundle(dir, *ring);
    if (!check.ok()) {
      std::string why;
      for (const auto& p : check.problems) why += p + "\n";
      throw std::runtime_error("the bench bundle does not verify:\n" + why);
    }
  }
  ~Fixture() {
    if (keep) return;
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Puts the log back to its unsealed events (untimed part of WriteSeal).
  void unseal() const {
    std::ofstream(dir / "events.jsonl", std::ios::binary | std::ios::trunc) << unsealed_events;
    fs::remove(dir / store::kSealFile);
  }
  json seal() const {
    store::EventLog log(dir / "events.jsonl", run_id);
    return store::write_seal(dir, log, "RUN_SEALED",
                             {{"status", "sealed"}, {"verdict", "success"}, {"reason", manifest["reason"]}},
                             manifest, *key);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void WriteSeal(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state) {
    state.PauseTiming();
    f.unseal();
    auto log = std::make_unique<store::EventLog>(f.dir / "events.jsonl", f.run_id);
    state.ResumeTiming();
    benchmark::DoNotOptimize(
        store::write_seal(f.dir, *log, "RUN_SEALED",
                          {{"status", "sealed"}, {"verdict", "success"}, {"reason", f.manifest["reason"]}},
                          f.manifest, *f.key));
    state.PauseTiming();
    log.reset();
    state.ResumeTiming();
  }
  if (!store::verify_bundle(f.dir, *f.ring).ok()) state.SkipWithError("the resealed bundle does not verify");
}

void ListAndHashFiles(benchmark::State& state) {
  Fixture& f = fixture();
  size_t bytes = 0, files = 0;
  for (auto _ : state) {
    auto list = store::list_bundle_files(f.dir);
    files = list.size();
    bytes = 0;
    for (const auto& e : list) bytes += e.bytes;
    benchmark::DoNotOptimize(list);
  }
  state.counters["files"] = static_cast<double>(files);
  state.counters["KiB"] = static_cast<double>(bytes) / 1024.0;
}

void Sign(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state) benchmark::DoNotOptimize(f.key->sign(f.message));
}

void VerifySignature(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state)
    if (!f.key->public_key().verify(f.message, f.signature)) state.SkipWithError("signature does not verify");
}

void VerifyBundleCold(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state) {
    auto c = store::verify_bundle(f.dir, *f.ring);
    if (!c.ok()) state.SkipWithError("bundle does not verify");
    benchmark::DoNotOptimize(c);
  }
}

void Fingerprint(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state) benchmark::DoNotOptimize(store::bundle_fingerprint(f.dir));
}

}  // namespace

BENCHMARK(WriteSeal)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->Iterations(40)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(ListAndHashFiles)->Unit(benchmark::kMicrosecond)->Repetitions(9)->ReportAggregatesOnly(true);
BENCHMARK(Sign)->Unit(benchmark::kMicrosecond)->Repetitions(9)->ReportAggregatesOnly(true);
BENCHMARK(VerifySignature)->Unit(benchmark::kMicrosecond)->Repetitions(9)->ReportAggregatesOnly(true);
BENCHMARK(VerifyBundleCold)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK(Fingerprint)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);
BENCHMARK_MAIN();
