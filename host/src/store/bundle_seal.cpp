#include "store/bundle_seal.hpp"
#include "core/json_file.hpp"

#include "core/sha256.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/seal_ledger.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace cp::store {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A name a seal can list and JSON can carry unchanged: valid UTF-8 without control characters.
bool printable_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    if (n == 2 && c < 0xc2) return false;  // overlong
    i += n;
  }
  return true;
}

struct Entry {
  std::string rel;
  bool ok;  // a regular file (false: unsealable)
};

// Walks `dir` without following a symlink; folders are descended, everything else reported.
void walk(const fs::path& base, const std::string& rel, std::vector<Entry>& out) {
  fs::path here = rel.empty() ? base : base / rel;
  DIR* d = ::opendir(here.c_str());
  if (!d) throw std::system_error(errno, std::generic_category(), "open folder " + here.string());
  std::vector<std::pair<std::string, unsigned char>> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n, e->d_type);
  }
  ::closedir(d);
  for (const auto& [n, type] : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    struct stat st {};
    if (::lstat((base / r).c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // gone meanwhile
      out.push_back({r, false});      // there, but not to be read (a name too long, no permission)
      continue;
    }
    // The seal's own files are left out only as what they are: regular files (a folder or a FIFO under
    // one of those names is something else, and listed as unsealable).
    if (outside_seal(r) && S_ISREG(st.st_mode)) continue;
    if (!printable_utf8(n)) {
      out.push_back({r, false});
      continue;
    }
    if (S_ISDIR(st.st_mode))
      walk(base, r, out);
    else
      out.push_back({r, S_ISREG(st.st_mode)});
  }
}

SealedFile hash_file(const fs::path& dir, const std::string& rel) {
  fs::path p = dir / rel;
  // O_NONBLOCK: a FIFO swapped in after the walk must not block; fstat below refuses it.
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + p.string());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::system_error(EINVAL, std::generic_category(), p.string() + " is not a regular file");
  }
  SealedFile f;
  f.path = rel;
  unsigned long long bytes = 0;
  try {
    f.sha256 = core::sha256_fd_hex(fd, bytes);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  f.bytes = bytes;
  return f;
}

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

}  // namespace

bool is_seal_event_type(const std::string& type) {
  static const char* kTypes[] = {"RUN_SEALED",        "RUN_AWAITING_APPROVAL", "APPROVAL_RECORDED",
                                 "EVIDENCE_PROMOTED", "EVIDENCE_REJECTED",     "RUN_ROLLED_BACK",
                                 "REPORT_ADDED"};
  return std::any_of(std::begin(kTypes), std::end(kTypes), [&](const char* t) { return type == t; });
}

std::string seal_message(const std::string& event_hash) {
  return "cp-host seal v1 " + event_hash;
}

bool outside_seal(const std::string& rel) {
  if (rel.find('/') != std::string::npos) return false;  // only the bundle's top level holds them
  static const char* kNames[] = {"manifest.json", "events.jsonl", ".lock", kSealFile};
  for (const char* n : kNames) {
    if (rel == n) return true;
    if (starts_with(rel, std::string(".") + n + ".tmp-")) return true;
  }
  return false;
}

std::vector<SealedFile> list_bundle_files(const fs::path& dir, std::vector<std::string>* unsealable) {
  std::vector<Entry> entries;
  walk(dir, "", entries);
  std::vector<SealedFile> out;
  for (const auto& e : entries) {
    if (!e.ok) {
      if (unsealable) unsealable->push_back(e.rel);
      continue;
    }
    out.push_back(hash_file(dir, e.rel));
  }
  std::sort(out.begin(), out.end(), [](const SealedFile& a, const SealedFile& b) { return a.path < b.path; });
  return out;
}

json files_json(const std::vector<SealedFile>& files) {
  json a = json::array();
  for (const auto& f : files) a.push_back(json::array({f.path, f.sha256, f.bytes}));
  return a;
}

std::vector<std::string> prune_unsealable(const fs::path& dir) {
  std::vector<Entry> entries;
  walk(dir, "", entries);
  std::vector<std::string> removed;
  for (const auto& e : entries) {
    if (e.ok) continue;
    std::error_code ec;
    fs::remove_all(dir / e.rel, ec);  // never follows a symlink: the link goes, not its target
    removed.push_back(e.rel);
  }
  return removed;
}

json write_seal(const fs::path& dir, EventLog& log, const std::string& type, json payload, json manifest,
                const HostKey& key, const PlainEvents& preceding, const SealGuard* guard) {
  manifest.erase("events");
  // What a run left in its scratch folder that no seal can list (a symlink, a FIFO, a name that is not
  // UTF-8) is removed and counted, not sealed.
  std::vector<std::string> removed = prune_unsealable(dir);
  std::vector<SealedFile> files = list_bundle_files(dir);
  if (guard) {
    std::map<std::string, std::string> left = guard->verified;
    for (const auto& f : files) {
      auto it = left.find(f.path);
      bool same = it != left.end() && it->second == f.sha256;
      if (it != left.end()) left.erase(it);
      if (!same && !guard->written.count(f.path))
        throw std::runtime_error(
            "the bundle changed while it was being amended: " + f.path +
            (it == guard->verified.end() ? " appeared" : " differs from the verified file"));
    }
    for (const auto& [path, sha] : left)
      if (!guard->written.count(path))
        throw std::runtime_error("the bundle changed while it was being amended: " + path + " went missing");
  }
  json list = files_json(files);
  if (!payload.is_object()) payload = json::object();
  payload["seal"] = {{"version", 1},
                     {"manifest", manifest},
                     {"files", {{"count", files.size()}, {"sha256", core::sha256_hex(list.dump())}}}};
  if (!removed.empty()) payload["seal"]["files"]["removed"] = removed.size();
  // Every event the seal follows is on disk before seal.json names the seal's place in the chain: after a
  // power loss, recovery finishes a seal only onto the very log it was signed over.
  log.sync();
  json before = json::array();
  for (const auto& [t, p] : preceding)
    before.push_back(log.prepare(t, p, before.empty() ? nullptr : &before.back()));
  json event = log.prepare(type, std::move(payload), before.empty() ? nullptr : &before.back());
  const std::string hash = event["hash"].get<std::string>();
  json seal{{"schema_version", 1},
            {"kind", "bundle_seal"},
            {"run_id", manifest.value("run_id", "")},
            {"algorithm", "ed25519"},
            {"key_id", key.public_key().key_id()},
            {"public_key", key.public_key().raw_base64()},
            {"preceding", before},
            {"event", event},
            {"files", list},
            {"signature", key.sign(seal_message(hash))}};
  write_json_atomic(dir / kSealFile, seal);
  // Recorded before the event is logged: a crash from here on is finished from seal.json, and a copy of an
  // older seal.json put back later is refused (store/seal_ledger.hpp).
  ledger_sealed(dir, event["seq"].get<uint64_t>(), hash);
  for (const auto& e : before) log.append_prepared(e);
  log.append_prepared(event);
  log.sync();  // the seal event is durable before the manifest (and so anyone) reports the run sealed
  manifest["events"] = {{"count", log.count()}, {"last_hash", log.last_hash()}};
  write_json_atomic(dir / "manifest.json", manifest);
  return manifest;
}

bool complete_seal(const fs::path& dir, EventLog& log, const KeyRing& keys) {
  json seal = core::read_json_file(dir / kSealFile);
  if (!seal.is_object() || !seal.contains("event") || !seal["event"].is_object()) return false;
  const json& ev = seal["event"];
  try {
    const PublicKey* k = keys.find(seal.value("key_id", ""));
    const std::string hash = ev.value("hash", "");
    if (!k || !seal["signature"].is_string() || event_hash(ev) != hash ||
        !k->verify(seal_message(hash), seal["signature"].get<std::string>()) ||
        !is_seal_event_type(ev.value("type", "")) || !ev["payload"].contains("seal"))
      return false;
    // The step's events, in order; those the log lacks are appended (each must follow the log's end, and
    // the chain from them to the signed event is checked by append_prepared's hash checks).
    std::vector<json> step;
    if (seal.contains("preceding") && seal["preceding"].is_array())
      for (const auto& e : seal["preceding"]) step.push_back(e);
    step.push_back(ev);
    for (size_t i = 0; i + 1 < step.size(); ++i)
      if (step[i + 1].value("prev_hash", "") != step[i].value("hash", "") ||
          step[i + 1].value("seq", 0ULL) != step[i].value("seq", 0ULL) + 1)
        return false;
    bool changed = false;
    if (auto led = ledger_read(dir); !led || !led->sealed || led->seq < ev.value("seq", 0ULL))
      ledger_sealed(dir, ev.value("seq", 0ULL), hash);
    for (const auto& e : step)
      if (e.value("seq", 0ULL) == log.count() + 1 && e.value("prev_hash", "") == log.last_hash()) {
        log.append_prepared(e);
        changed = true;
      }
    log.sync();
    if (ev.value("seq", 0ULL) != log.count() || hash != log.last_hash()) return changed;
    // Only a manifest that lags the log (written before this seal) is finished; one that claims this seal's
    // event count but reads otherwise was changed afterwards, and verification must see that.
    json man = core::read_json_file(dir / "manifest.json");
    bool lags = !man.is_object() || !man.contains("events") || !man["events"].is_object() ||
                man["events"].value("count", 0ULL) != log.count() ||
                man["events"].value("last_hash", "") != log.last_hash();
    json want = ev["payload"]["seal"]["manifest"];
    want["events"] = {{"count", log.count()}, {"last_hash", log.last_hash()}};
    if (lags) {
      write_json_atomic(dir / "manifest.json", want);
      changed = true;
    }
    return changed;
  } catch (const json::exception&) {
    return false;  // a seal.json that is not ours in shape: verification reports it
  }
}

}  // namespace cp::store
