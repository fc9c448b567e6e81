#include "control/run_views.hpp"

#include "core/json_depth.hpp"
#include "core/sha256.hpp"
#include "store/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <vector>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;
using Status = ViewResult::Status;

namespace {

ViewResult fail(Status s, std::string message) {
  ViewResult r;
  r.status = s;
  r.message = std::move(message);
  return r;
}

// A JSON file of the bundle, bounded and never through a link; sets `why` when it is not usable.
std::optional<json> read_json_beneath(const fs::path& bundle, const fs::path& rel, uint64_t max,
                                      Status& status, std::string& why) {
  store::FileRead f = store::read_regular_file_beneath(bundle, rel, max);
  if (f.status == store::FileRead::Status::not_regular) {
    status = Status::missing;
    why = rel.string() + " is missing or not a regular file";
    return std::nullopt;
  }
  if (f.status == store::FileRead::Status::too_large) {
    status = Status::too_large;
    why = rel.string() + " is larger than " + std::to_string(max >> 20) + " MiB";
    return std::nullopt;
  }
  if (!core::json_depth_ok(f.bytes)) {
    status = Status::unreadable;
    why = rel.string() + " nests deeper than " + std::to_string(core::kMaxJsonDepth) + " levels";
    return std::nullopt;
  }
  json doc = json::parse(f.bytes, nullptr, false);
  if (doc.is_discarded()) {
    status = Status::unreadable;
    why = rel.string() + " is not JSON";
    return std::nullopt;
  }
  return doc;
}

// The manifest's view of the run: read through the same guard (the API answers for sealed and live runs).
json manifest_of(const fs::path& bundle) {
  Status s;
  std::string why;
  auto m = read_json_beneath(bundle, "manifest.json", kMaxContractBytes, s, why);
  return m && m->is_object() ? *m : json::object();
}

const char* type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  return "device";
}

struct Walk {
  json entries = json::array();
  uint64_t total = 0;
  bool truncated = false;
};

// The entries of the folder open at `dirfd`, depth first; folders are entered through openat with
// O_NOFOLLOW, so a folder a run replaced by a link (before or during the walk) is never entered.
void walk(int dirfd, const std::string& prefix, int depth, Walk& w) {
  int dup = ::dup(dirfd);
  if (dup < 0) return;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    // A folder of millions of names must not hold the reader: far more than can be listed is enough.
    if (names.size() > kMaxArtifactEntries) {
      w.truncated = true;
      break;
    }
    names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    if (w.entries.size() >= kMaxArtifactEntries) {
      w.truncated = true;
      return;
    }
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string path = prefix + n;
    if (S_ISDIR(st.st_mode)) {
      if (depth >= kMaxArtifactDepth) {
        w.truncated = true;
        continue;
      }
      int sub = ::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) continue;
      walk(sub, path + "/", depth + 1, w);
      ::close(sub);
      continue;
    }
    json e{{"path", path}, {"type", type_name(st.st_mode)}, {"size", static_cast<uint64_t>(st.st_size)}};
    if (S_ISREG(st.st_mode)) {
      e["media_type"] = media_type_of(n);
      w.total += static_cast<uint64_t>(st.st_size);
    }
    w.entries.push_back(std::move(e));
  }
}

}  // namespace

std::string media_type_of(const std::string& name) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".json", "application/json"}, {".jsonl", "application/x-ndjson"},
      {".patch", "text/x-diff"},     {".diff", "text/x-diff"},
      {".log", "text/plain"},        {".txt", "text/plain"},
      {".md", "text/markdown"},      {".html", "text/html"},
      {".htm", "text/html"},         {".csv", "text/csv"},
      {".xml", "application/xml"},   {".png", "image/png"},
      {".jpg", "image/jpeg"},        {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},         {".webp", "image/webp"},
      {".svg", "image/svg+xml"},     {".pdf", "application/pdf"},
      {".gz", "application/gzip"},   {".tar", "application/x-tar"},
      {".zip", "application/zip"},
  };
  std::string ext = fs::path(name).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [e, t] : kTypes)
    if (ext == e) return t;
  return "application/octet-stream";
}

ViewResult contract_view(const fs::path& bundle) {
  Status s = Status::ok;
  std::string why;
  auto doc = read_json_beneath(bundle, "contract.json", kMaxContractBytes, s, why);
  if (!doc) return fail(s, why);
  json m = manifest_of(bundle);
  // The sha256 a run records is of the compiled document as serialised compactly (run/engine.cpp).
  std::string sha = core::sha256_hex(doc->dump());
  std::string recorded = m.value("contract_sha256", "");
  ViewResult r;
  r.view = {{"run_id", bundle.filename().string()},
            {"kind", m.value("kind", "run")},
            {"contract_sha256", recorded},
            {"sha256", sha},
            {"sha256_matches", !recorded.empty() && recorded == sha},
            {"contract", *doc}};
  return r;
}

ViewResult reports_view(const fs::path& bundle) {
  static const std::set<std::string> kPacks{"proof_pack", "incident_pack", "approval_pack"};
  json reports = json::object(), packs = json::object(), skipped = json::array();
  std::vector<std::string> names;
  std::error_code ec;
  // The folder is the host's; still, a link in its place would be read through, so none is.
  const bool linked = fs::is_symlink(fs::symlink_status(bundle / "reports", ec));
  for (const auto& e : fs::directory_iterator(linked ? fs::path() : bundle / "reports", ec)) {
    if (e.path().extension() != ".json") continue;
    names.push_back(e.path().stem().string());
    if (names.size() > kMaxArtifactEntries) break;
  }
  std::sort(names.begin(), names.end());
  uint64_t total = 0;
  for (const auto& n : names) {
    Status s = Status::ok;
    std::string why;
    if (total >= kMaxReportsTotal) {
      skipped.push_back({{"name", n}, {"why", "the reports before it add up to 64 MiB"}});
      continue;
    }
    auto doc = read_json_beneath(bundle, fs::path("reports") / (n + ".json"), kMaxReportBytes, s, why);
    if (!doc) {
      skipped.push_back({{"name", n}, {"why", why}});
      continue;
    }
    total += doc->dump().size();
    (kPacks.count(n) ? packs : reports)[n] = std::move(*doc);
  }
  ViewResult r;
  r.view = {
      {"run_id", bundle.filename().string()}, {"reports", reports}, {"packs", packs}, {"skipped", skipped}};
  return r;
}

ViewResult artifact_listing(const fs::path& bundle) {
  ViewResult r;
  Walk w;
  int fd = ::open((bundle / "artifacts").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    walk(fd, "", 0, w);
    ::close(fd);
  }
  r.view = {{"run_id", bundle.filename().string()},
            {"artifacts", w.entries},
            {"count", w.entries.size()},
            {"total_bytes", w.total},
            {"truncated", w.truncated}};
  return r;
}

ViewResult read_patch(const fs::path& bundle, std::string& text) {
  store::FileRead f = store::read_regular_file_beneath(bundle, "artifacts/diff.patch", kMaxPatchViewBytes);
  if (f.status == store::FileRead::Status::not_regular)
    return fail(Status::missing,
                "the run recorded no patch (artifacts/diff.patch): it changed nothing or "
                "never got as far as collecting its changes");
  if (f.status == store::FileRead::Status::too_large)
    return fail(Status::too_large, "artifacts/diff.patch is larger than 64 MiB");
  text = std::move(f.bytes);
  return {};
}

}  // namespace cp::control
