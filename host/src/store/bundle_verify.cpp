#include "store/bundle_verify.hpp"
#include "core/json_file.hpp"

#include "core/sha256.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/bundle_seal.hpp"
#include "store/event_log.hpp"
#include "store/seal_ledger.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

namespace cp::store {

namespace fs = std::filesystem;
using nlohmann::json;
using State = BundleCheck::State;

bool held_by_live_process(const fs::path& dir) {
  int fd = ::open((dir / ".lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

namespace {

// The last line of the log as JSON (null when there is none or it is not JSON).
json last_event(const fs::path& log, uint64_t valid_bytes) {
  if (valid_bytes == 0) return nullptr;
  std::ifstream in(log, std::ios::binary);
  // The last line ends at valid_bytes; read back far enough to hold it (a seal event is a few KB, the
  // manifest it carries included; 64 MiB is the cap on any JSON cp-host reads).
  uint64_t want = std::min<uint64_t>(valid_bytes, core::kMaxJsonFileBytes);
  in.seekg(static_cast<std::streamoff>(valid_bytes - want));
  std::string tail(want, '\0');
  in.read(tail.data(), static_cast<std::streamsize>(want));
  tail.resize(static_cast<size_t>(in.gcount()));
  if (!tail.empty() && tail.back() == '\n') tail.pop_back();
  size_t nl = tail.rfind('\n');
  std::string line = nl == std::string::npos ? tail : tail.substr(nl + 1);
  json e = json::parse(line, nullptr, false);
  return e.is_discarded() ? json(nullptr) : e;
}

std::string short_json(const json& v) {
  std::string s = v.is_null() ? "absent" : v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// Field-by-field difference between the manifest and the sealed one, one problem per field.
void compare_manifest(const json& have, const json& sealed, std::vector<std::string>& problems) {
  std::set<std::string> keys;
  for (const auto& [k, v] : have.items())
    if (k != "events") keys.insert(k);
  for (const auto& [k, v] : sealed.items()) keys.insert(k);
  for (const auto& k : keys) {
    json a = have.contains(k) ? have[k] : json(nullptr);
    json b = sealed.contains(k) ? sealed[k] : json(nullptr);
    if (a != b)
      problems.push_back("manifest.json /" + k + " reads " + short_json(a) + ", the seal says " +
                         short_json(b));
  }
}

void check_files(const fs::path& dir, const json& seal_doc, const json& seal,
                 std::vector<std::string>& problems, std::map<std::string, std::string>& sealed) {
  const json& list = seal_doc["files"];
  if (!list.is_array()) {
    problems.push_back("seal.json has no file list");
    return;
  }
  if (core::sha256_hex(list.dump()) != seal["files"].value("sha256", "") ||
      list.size() != seal["files"].value("count", 0ULL)) {
    problems.push_back("seal.json's file list is not the one the signed seal event binds");
    return;
  }
  std::map<std::string, std::pair<std::string, uint64_t>> want;
  for (const auto& f : list) {
    if (!f.is_array() || f.size() != 3 || !f[0].is_string() || !f[1].is_string() ||
        !f[2].is_number_unsigned()) {
      problems.push_back("seal.json's file list holds a malformed entry");
      return;
    }
    want[f[0].get<std::string>()] = {f[1].get<std::string>(), f[2].get<uint64_t>()};
    sealed[f[0].get<std::string>()] = f[1].get<std::string>();
  }
  std::vector<std::string> unsealable;
  std::vector<SealedFile> have;
  try {
    have = list_bundle_files(dir, &unsealable);
  } catch (const std::exception& e) {
    problems.push_back(std::string("cannot read the bundle's files: ") + e.what());
    return;
  }
  for (const auto& u : unsealable) problems.push_back(u + " is not a regular file the seal could list");
  for (const auto& f : have) {
    auto it = want.find(f.path);
    if (it == want.end()) {
      problems.push_back(f.path + " is not in the seal (added after the run was sealed)");
      continue;
    }
    if (it->second.first != f.sha256)
      problems.push_back(f.path + " differs from the sealed file (sha256 " + f.sha256.substr(0, 12) +
                         "…, sealed " + it->second.first.substr(0, 12) + "…)");
    want.erase(it);
  }
  for (const auto& [path, v] : want) problems.push_back(path + " is sealed but missing");
}

}  // namespace

const char* state_name(State s) {
  switch (s) {
    case State::intact:
      return "intact";
    case State::tampered:
      return "tampered";
    case State::live:
      return "live";
  }
  return "tampered";
}

nlohmann::json check_json(const std::string& run_id, const BundleCheck& c) {
  nlohmann::json j{{"run_id", run_id},      {"ok", c.ok()},       {"state", state_name(c.state)},
                   {"status", c.status},    {"events", c.events}, {"last_hash", c.last_hash},
                   {"problems", c.problems}};
  if (!c.verdict.empty()) j["verdict"] = c.verdict;
  if (!c.key_id.empty()) j["key_id"] = c.key_id;
  return j;
}

namespace {

// What the checks of one bundle share: the bundle, the trusted keys, what is read once, and the findings.
struct Verification {
  const fs::path& dir;
  const KeyRing& keys;
  BundleCheck& r;
  ChainCheck chain;
  json manifest;  // manifest.json as read ({} when unreadable)
  json seal_doc;  // seal.json as read
  const PublicKey* key = nullptr;
  void problem(std::string what) { r.problems.push_back(std::move(what)); }
};

// The events log and manifest.json, read and checked for form.
void read_log_and_manifest(Verification& v) {
  const fs::path log = v.dir / "events.jsonl";
  v.chain = verify_event_log(log);
  v.r.events = v.chain.events;
  v.r.last_hash = v.chain.last_hash;
  std::error_code ec;
  if (!fs::exists(log, ec))
    v.problem("events.jsonl is missing");
  else if (!v.chain.ok)
    v.problem("events.jsonl line " + std::to_string(v.chain.bad_line) + ": " + v.chain.reason);
  v.manifest = core::read_json_file(v.dir / "manifest.json");
  if (!v.manifest.is_object()) {
    v.problem(fs::exists(v.dir / "manifest.json", ec) ? "manifest.json is not a JSON object"
                                                      : "manifest.json is missing");
    v.manifest = json::object();
  }
  const json& m = v.manifest;
  v.r.status = m.contains("status") && m["status"].is_string() ? m["status"].get<std::string>() : "";
  if (m.contains("verdict") && m["verdict"].is_string()) v.r.verdict = m["verdict"].get<std::string>();
  v.seal_doc = core::read_json_file(v.dir / kSealFile);
}

// A bundle whose manifest does not say sealed: a live run (true: nothing to check yet), or one someone cut
// back to look unsealed (its problems named).
bool live_or_cut_back(Verification& v) {
  const bool says_sealed = v.r.status == "sealed" || v.r.status == "awaiting_approval";
  if (says_sealed) return false;
  auto ledger = ledger_read(v.dir);
  const bool ever_sealed = ledger && ledger->sealed;
  if (v.r.problems.empty() && !v.seal_doc.is_object() && !ever_sealed && held_by_live_process(v.dir)) {
    v.r.state = State::live;
    return true;
  }
  const std::string says = "manifest.json says '" + v.r.status + "'";
  if (v.seal_doc.is_object())
    v.problem(says + " but the bundle holds a seal: it was sealed");
  else if (ever_sealed)
    v.problem(says + " but this host sealed the run (event " + std::to_string(ledger->seq) +
              ") and its seal is gone");
  else if (!held_by_live_process(v.dir))
    v.problem(says +
              " and no live process holds the run: a sealed bundle cut back, or a crashed run that `cp-host "
              "runs recover` has not sealed yet");
  return false;
}

// The seal event's own hash, its type, the key that signed it and the signature.
void check_signature(Verification& v, const json& ev) {
  v.r.key_id = v.seal_doc.value("key_id", "");
  const std::string hash = ev.value("hash", "");
  v.key = v.keys.find(v.r.key_id);
  if (!is_seal_event_type(ev.value("type", "")))
    v.problem("seal.json's event is a " + ev.value("type", "?") + ", which seals nothing");
  if (event_hash(ev) != hash) v.problem("seal.json's event does not match its own hash");
  if (!v.key)
    v.problem("seal.json is signed by key " + v.r.key_id + ", which is not among " +
              (v.keys.empty() ? std::string("the trusted keys (none)") : v.keys.origin) +
              (v.keys.empty() ? "; pass the signer's public key with --key" : ""));
  else if (!v.seal_doc["signature"].is_string() ||
           !v.key->verify(seal_message(hash), v.seal_doc["signature"].get<std::string>()))
    v.problem("the signature in seal.json does not verify with key " + v.r.key_id);
}

// The log ends with the sealed event; or the seal's step is the log's next one (a seal cut short).
void check_log_end(Verification& v, const json& ev) {
  const ChainCheck& c = v.chain;
  bool cut_short = false;
  std::vector<json> step;
  if (v.seal_doc.contains("preceding") && v.seal_doc["preceding"].is_array())
    for (const auto& e : v.seal_doc["preceding"]) step.push_back(e);
  step.push_back(ev);
  for (const auto& e : step)
    if (e.is_object() && e.value("seq", 0ULL) == c.events + 1 && e.value("prev_hash", "") == c.last_hash)
      cut_short = true;
  v.r.seal_pending = c.ok && cut_short;
  json last = c.ok ? last_event(v.dir / "events.jsonl", c.valid_bytes) : json(nullptr);
  if (c.ok && cut_short)
    v.problem(
        "the last seal (event " + std::to_string(c.events + 1) +
        ") never reached events.jsonl: a crash cut it short (`cp-host runs recover` finishes it) or the "
        "log was cut");
  else if (c.ok && (!last.is_object() || last.value("hash", "") != ev.value("hash", "")))
    v.problem("events.jsonl does not end with the sealed event (seq " +
              std::to_string(ev.value("seq", 0ULL)) + "; the log holds " + std::to_string(c.events) +
              " events): events were cut or added after the seal");
}

// manifest.json is the sealed manifest, field by field and byte for byte.
void check_sealed_manifest(Verification& v, const json& seal) {
  if (!seal.contains("manifest") || !seal["manifest"].is_object()) return;
  v.r.sealed_manifest = seal["manifest"];
  const json& m = v.manifest;
  if (!m.empty()) compare_manifest(m, seal["manifest"], v.r.problems);
  // The bytes too, as the host writes them: duplicate keys, 1.0 for 1 or escapes that parse alike are a
  // different file, and whoever reads it with another parser may read something else.
  json want = seal["manifest"];
  want["events"] = {{"count", v.chain.events}, {"last_hash", v.chain.last_hash}};
  std::ifstream mf(v.dir / "manifest.json", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(mf)), std::istreambuf_iterator<char>());
  if (!m.empty() && bytes != json_file_text(want))
    v.problem("manifest.json is not byte for byte the manifest the host wrote for this seal");
}

// The step's earlier events: each one hashes to itself and chains to the next, ending at the signed event
// (so the signature binds them all).
void check_preceding(Verification& v, const json& ev) {
  if (!v.seal_doc.contains("preceding") || !v.seal_doc["preceding"].is_array()) {
    v.problem("seal.json has no list of preceding events");
    return;
  }
  const json& pre = v.seal_doc["preceding"];
  bool chained = true;
  for (size_t i = 0; i < pre.size() && chained; ++i) {
    const json& next = i + 1 < pre.size() ? pre[i + 1] : ev;
    chained = pre[i].is_object() && event_hash(pre[i]) == pre[i].value("hash", "") &&
              next.value("prev_hash", "") == pre[i].value("hash", "") &&
              next.value("seq", 0ULL) == pre[i].value("seq", 0ULL) + 1;
  }
  if (!chained) v.problem("seal.json's preceding events do not lead to its seal event");
}

// The rest of seal.json is what the host wrote, byte for byte (nothing in it goes unchecked); it is the
// last seal the host's ledger knows for the run (an older one put back is a rollback); it names this run.
void check_seal_file(Verification& v, const json& ev) {
  const json& sd = v.seal_doc;
  const std::string run_id = v.dir.filename().string();
  std::ifstream sf(v.dir / kSealFile, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(sf)), std::istreambuf_iterator<char>());
  if (bytes != json_file_text(sd) || sd.value("schema_version", 0) != 1 ||
      sd.value("kind", "") != "bundle_seal" || sd.value("algorithm", "") != "ed25519" ||
      sd.value("run_id", "") != run_id || (v.key && sd.value("public_key", "") != v.key->raw_base64()))
    v.problem("seal.json is not as the host wrote it (its form or a field other than the seal was changed)");
  if (auto led = ledger_read(v.dir); led && led->sealed && !v.r.seal_pending) {
    uint64_t seq = ev.value("seq", 0ULL);
    if (seq < led->seq || (seq == led->seq && led->hash != ev.value("hash", "")))
      v.problem("seal.json is not the last seal this host signed for the run (event " +
                std::to_string(led->seq) + "): an older seal was put back");
  }
  if (ev.value("run_id", "") != run_id)
    v.problem("the seal is of run '" + ev.value("run_id", "") + "', not of this bundle's '" + run_id + "'");
}

// The seal: the log's last event, held in seal.json, signed by a trusted key, binding the files and the
// manifest.
void check_seal(Verification& v) {
  const json& sd = v.seal_doc;
  std::error_code ec;
  if (!sd.is_object()) {
    v.problem(fs::exists(v.dir / kSealFile, ec) ? "seal.json is not a JSON object"
                                                : "seal.json is missing: the bundle is not signed");
    return;
  }
  // contains() before every const operator[]: on a missing key that operator is undefined behaviour.
  if (!sd.contains("event") || !sd["event"].is_object() || !sd["event"].contains("payload") ||
      !sd["event"]["payload"].is_object() || !sd["event"]["payload"].contains("seal") ||
      !sd["event"]["payload"]["seal"].is_object()) {
    v.problem("seal.json holds no seal event");
    return;
  }
  const json& ev = sd["event"];
  const json& seal = ev["payload"]["seal"];
  try {
    check_signature(v, ev);
    check_log_end(v, ev);
    if (seal.contains("files") && seal["files"].is_object())
      check_files(v.dir, sd, seal, v.r.problems, v.r.files);
    else
      v.problem("the seal event binds no files");
    check_sealed_manifest(v, seal);
    check_preceding(v, ev);
    check_seal_file(v, ev);
  } catch (const json::exception& e) {
    v.problem(std::string("seal.json is malformed: ") + e.what());
  }
}

// What the manifest itself claims: its event counter, the contract's hash, the reports it names.
void check_manifest_claims(Verification& v) {
  const json& m = v.manifest;
  const bool says_sealed = v.r.status == "sealed" || v.r.status == "awaiting_approval";
  if (says_sealed) {
    const json ev = m.value("events", json::object());
    if (!ev.is_object() || ev.value("count", 0ULL) != v.chain.events ||
        ev.value("last_hash", "") != v.chain.last_hash)
      v.problem("manifest.json's event counter (" + short_json(ev) + ") is not the log's (" +
                std::to_string(v.chain.events) + " events)");
  }
  if (m.contains("contract_sha256")) {
    json contract = core::read_json_file(v.dir / "contract.json");
    if (!contract.is_object())
      v.problem("contract.json is missing or not JSON");
    else if (m["contract_sha256"] != core::sha256_hex(contract.dump()))
      v.problem("contract.json does not hash to the manifest's contract_sha256");
  }
  std::error_code ec;
  if (m.contains("reports") && m["reports"].is_object())
    for (const auto& [k, rel] : m["reports"].items())
      if (!rel.is_string() || !fs::exists(v.dir / rel.get<std::string>(), ec))
        v.problem("manifest.json names report " + k + " at " + short_json(rel) + ", which is missing");
}

BundleCheck verify_unguarded(const fs::path& dir, const KeyRing& keys) {
  BundleCheck r;
  Verification v{dir, keys, r, {}, {}, {}};
  read_log_and_manifest(v);
  if (live_or_cut_back(v)) return r;
  check_seal(v);
  check_manifest_claims(v);
  r.state = r.problems.empty() ? State::intact : State::tampered;
  return r;
}

}  // namespace

BundleCheck verify_bundle(const fs::path& dir, const KeyRing& keys) {
  // Every file read here may have been written by someone else: a value of the wrong type is a finding,
  // never a crash.
  try {
    return verify_unguarded(dir, keys);
  } catch (const std::exception& e) {
    BundleCheck r;
    r.problems.push_back(std::string("the bundle cannot be checked: ") + e.what());
    return r;
  }
}

BundleCheck verify_settled(const fs::path& dir, const KeyRing& keys, bool finish_pending) {
  BundleCheck c = verify_bundle(dir, keys);
  if (c.ok() || c.state == BundleCheck::State::live) return c;
  // An amendment (a decision, a promotion) may be writing the bundle right now under its lock: its seal
  // is then half-written, which is not tampering. Wait for the lock (briefly: amendments take
  // milliseconds; a live run would keep it, and its bundle reads as live above) and look again.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int fd;
  while ((fd = try_lock_bundle(dir)) < 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (fd < 0) return c;
  try {
    if (finish_pending && c.seal_pending) {
      EventLog log(dir / "events.jsonl", dir.filename().string());
      complete_seal(dir, log, keys);
    }
    c = verify_bundle(dir, keys);
  } catch (const std::exception&) {
    // Left as found: the first answer stands.
  }
  ::close(fd);
  return c;
}

std::string refusal_to_act(const fs::path& dir, BundleCheck* out) {
  KeyRing keys;
  try {
    keys = KeyRing::of_dir(key_dir());
  } catch (const KeyError&) {
  }
  BundleCheck c = verify_settled(dir, keys, true);
  if (out) *out = c;
  if (c.ok()) return "";
  const std::string id = dir.filename().string();
  if (c.state == BundleCheck::State::live) return "run " + id + " is still running";
  std::string more = c.problems.size() > 1 ? " (and " + std::to_string(c.problems.size() - 1) + " more)" : "";
  return "run " + id + " does not verify: " + (c.problems.empty() ? "unknown" : c.problems[0]) + more +
         "; see `cp-host runs verify " + id + "`";
}

std::string bundle_fingerprint(const fs::path& dir) {
  std::string acc;
  std::vector<fs::path> todo{dir};
  while (!todo.empty()) {
    fs::path d = todo.back();
    todo.pop_back();
    DIR* h = ::opendir(d.c_str());
    if (!h) continue;
    while (dirent* e = ::readdir(h)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      fs::path p = d / n;
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) continue;
      acc += p.string();
      acc += '\0';
      for (long long v :
           {static_cast<long long>(st.st_mode), static_cast<long long>(st.st_size),
            static_cast<long long>(st.st_ino), static_cast<long long>(st.st_mtim.tv_sec),
            static_cast<long long>(st.st_mtim.tv_nsec), static_cast<long long>(st.st_ctim.tv_sec),
            static_cast<long long>(st.st_ctim.tv_nsec)})
        acc += std::to_string(v) + ',';
      if (S_ISDIR(st.st_mode)) todo.push_back(p);
    }
    ::closedir(h);
  }
  return core::sha256_hex(acc);
}

}  // namespace cp::store
