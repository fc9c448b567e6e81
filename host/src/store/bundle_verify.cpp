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

namespace {

// True when a live process holds the bundle's lock. Never creates the lock file: verification writes
// nothing.
bool held_by_live_process(const fs::path& dir) {
  int fd = ::open((dir / ".lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

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

namespace {

BundleCheck verify_unguarded(const fs::path& dir, const KeyRing& keys) {
  BundleCheck r;
  auto& problems = r.problems;
  const fs::path log = dir / "events.jsonl";
  ChainCheck c = verify_event_log(log);
  r.events = c.events;
  r.last_hash = c.last_hash;
  std::error_code ec;
  if (!fs::exists(log, ec))
    problems.push_back("events.jsonl is missing");
  else if (!c.ok)
    problems.push_back("events.jsonl line " + std::to_string(c.bad_line) + ": " + c.reason);

  json m = core::read_json_file(dir / "manifest.json");
  if (!m.is_object()) {
    problems.push_back(fs::exists(dir / "manifest.json", ec) ? "manifest.json is not a JSON object"
                                                             : "manifest.json is missing");
    m = json::object();
  }
  r.status = m.contains("status") && m["status"].is_string() ? m["status"].get<std::string>() : "";
  if (m.contains("verdict") && m["verdict"].is_string()) r.verdict = m["verdict"].get<std::string>();
  json seal_doc = core::read_json_file(dir / kSealFile);
  const bool says_sealed = r.status == "sealed" || r.status == "awaiting_approval";
  // Not sealed: either a live run (nothing to check yet), or a bundle someone cut back to look unsealed.
  auto ledger = ledger_read(dir);
  const bool ever_sealed = ledger && ledger->sealed;
  if (!says_sealed && problems.empty() && !seal_doc.is_object() && !ever_sealed &&
      held_by_live_process(dir)) {
    r.state = State::live;
    return r;
  }
  if (!says_sealed) {
    if (seal_doc.is_object())
      problems.push_back("manifest.json says '" + r.status + "' but the bundle holds a seal: it was sealed");
    else if (ever_sealed)
      problems.push_back("manifest.json says '" + r.status + "' but this host sealed the run (event " +
                         std::to_string(ledger->seq) + ") and its seal is gone");
    else if (!held_by_live_process(dir))
      problems.push_back("manifest.json says '" + r.status +
                         "' and no live process holds the run: a sealed bundle cut back, or a crashed run "
                         "that `cp-host runs recover` has not sealed yet");
  }

  // The seal: the log's last event, held in seal.json, signed by a trusted key.
  json last = c.ok ? last_event(log, c.valid_bytes) : json(nullptr);
  if (!seal_doc.is_object()) {
    problems.push_back(fs::exists(dir / kSealFile, ec) ? "seal.json is not a JSON object"
                                                       : "seal.json is missing: the bundle is not signed");
  } else if (!seal_doc.contains("event") || !seal_doc["event"].is_object() ||
             !seal_doc["event"]["payload"].is_object() || !seal_doc["event"]["payload"].contains("seal") ||
             !seal_doc["event"]["payload"]["seal"].is_object()) {
    problems.push_back("seal.json holds no seal event");
  } else {
    const json& ev = seal_doc["event"];
    const json& seal = ev["payload"]["seal"];
    try {
      r.key_id = seal_doc.value("key_id", "");
      const std::string hash = ev.value("hash", "");
      const PublicKey* key = keys.find(r.key_id);
      if (!is_seal_event_type(ev.value("type", "")))
        problems.push_back("seal.json's event is a " + ev.value("type", "?") + ", which seals nothing");
      if (event_hash(ev) != hash) problems.push_back("seal.json's event does not match its own hash");
      if (!key)
        problems.push_back("seal.json is signed by key " + r.key_id + ", which is not among " +
                           (keys.empty() ? std::string("the trusted keys (none)") : keys.origin) +
                           (keys.empty() ? "; pass the signer's public key with --key" : ""));
      else if (!seal_doc["signature"].is_string() ||
               !key->verify(seal_message(hash), seal_doc["signature"].get<std::string>()))
        problems.push_back("the signature in seal.json does not verify with key " + r.key_id);
      bool cut_short = false;
      std::vector<json> step;
      if (seal_doc.contains("preceding") && seal_doc["preceding"].is_array())
        for (const auto& e : seal_doc["preceding"]) step.push_back(e);
      step.push_back(ev);
      for (const auto& e : step)
        if (e.is_object() && e.value("seq", 0ULL) == c.events + 1 && e.value("prev_hash", "") == c.last_hash)
          cut_short = true;
      r.seal_pending = c.ok && cut_short;
      if (c.ok && cut_short)
        problems.push_back("the last seal (event " + std::to_string(c.events + 1) +
                           ") never reached events.jsonl: a crash cut it short (`cp-host runs recover` "
                           "finishes it) or the log was cut");
      else if (c.ok && (!last.is_object() || last.value("hash", "") != hash))
        problems.push_back("events.jsonl does not end with the sealed event (seq " +
                           std::to_string(ev.value("seq", 0ULL)) + "; the log holds " +
                           std::to_string(c.events) + " events): events were cut or added after the seal");
      if (seal.contains("files") && seal["files"].is_object())
        check_files(dir, seal_doc, seal, problems, r.files);
      else
        problems.push_back("the seal event binds no files");
      if (seal.contains("manifest") && seal["manifest"].is_object()) {
        r.sealed_manifest = seal["manifest"];
        if (!m.empty()) compare_manifest(m, seal["manifest"], problems);
        // The bytes too, as the host writes them: duplicate keys, 1.0 for 1 or escapes that parse alike
        // are a different file, and whoever reads it with another parser may read something else.
        json want = seal["manifest"];
        want["events"] = {{"count", c.events}, {"last_hash", c.last_hash}};
        std::ifstream mf(dir / "manifest.json", std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(mf)), std::istreambuf_iterator<char>());
        if (!m.empty() && bytes != json_file_text(want))
          problems.push_back("manifest.json is not byte for byte the manifest the host wrote for this seal");
      }
      // The step's earlier events: each one hashes to itself and chains to the next, ending at the signed
      // event (so the signature binds them all).
      if (!seal_doc.contains("preceding") || !seal_doc["preceding"].is_array()) {
        problems.push_back("seal.json has no list of preceding events");
      } else {
        const json& pre = seal_doc["preceding"];
        bool chained = true;
        for (size_t i = 0; i < pre.size() && chained; ++i) {
          const json& next = i + 1 < pre.size() ? pre[i + 1] : ev;
          chained = pre[i].is_object() && event_hash(pre[i]) == pre[i].value("hash", "") &&
                    next.value("prev_hash", "") == pre[i].value("hash", "") &&
                    next.value("seq", 0ULL) == pre[i].value("seq", 0ULL) + 1;
        }
        if (!chained) problems.push_back("seal.json's preceding events do not lead to its seal event");
      }
      // The rest of seal.json is what the host wrote, byte for byte: nothing in it goes unchecked.
      {
        std::ifstream sf(dir / kSealFile, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(sf)), std::istreambuf_iterator<char>());
        if (bytes != json_file_text(seal_doc) || seal_doc.value("schema_version", 0) != 1 ||
            seal_doc.value("kind", "") != "bundle_seal" || seal_doc.value("algorithm", "") != "ed25519" ||
            seal_doc.value("run_id", "") != dir.filename().string() ||
            (key && seal_doc.value("public_key", "") != key->raw_base64()))
          problems.push_back(
              "seal.json is not as the host wrote it (its form or a field other than the seal "
              "was changed)");
      }
      // The host's ledger knows the last seal it signed for this run: an older one put back is a rollback.
      if (auto led = ledger_read(dir); led && led->sealed && !r.seal_pending) {
        uint64_t seq = ev.value("seq", 0ULL);
        if (seq < led->seq || (seq == led->seq && led->hash != hash))
          problems.push_back("seal.json is not the last seal this host signed for the run (event " +
                             std::to_string(led->seq) + "): an older seal was put back");
      }
      if (ev.value("run_id", "") != dir.filename().string())
        problems.push_back("the seal is of run '" + ev.value("run_id", "") + "', not of this bundle's '" +
                           dir.filename().string() + "'");
    } catch (const json::exception& e) {
      problems.push_back(std::string("seal.json is malformed: ") + e.what());
    }
  }

  if (says_sealed && m.is_object()) {
    const json ev = m.value("events", json::object());
    if (!ev.is_object() || ev.value("count", 0ULL) != c.events || ev.value("last_hash", "") != c.last_hash)
      problems.push_back("manifest.json's event counter (" + short_json(ev) + ") is not the log's (" +
                         std::to_string(c.events) + " events)");
  }
  if (m.contains("contract_sha256")) {
    json contract = core::read_json_file(dir / "contract.json");
    if (!contract.is_object())
      problems.push_back("contract.json is missing or not JSON");
    else if (m["contract_sha256"] != core::sha256_hex(contract.dump()))
      problems.push_back("contract.json does not hash to the manifest's contract_sha256");
  }
  if (m.contains("reports") && m["reports"].is_object())
    for (const auto& [k, v] : m["reports"].items())
      if (!v.is_string() || !fs::exists(dir / v.get<std::string>(), ec))
        problems.push_back("manifest.json names report " + k + " at " + short_json(v) + ", which is missing");
  r.state = problems.empty() ? State::intact : State::tampered;
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
