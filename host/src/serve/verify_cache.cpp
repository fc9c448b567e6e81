#include "serve/verify_cache.hpp"

#include "core/json_file.hpp"
#include "core/sha256.hpp"
#include "store/bundle_verify.hpp"
#include "store/host_key.hpp"

#include <sys/stat.h>

namespace cp::serve {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::string text;
  core::read_json_file(p, text);
  return text;
}

}  // namespace

std::string host_keys_fingerprint() {
  fs::path dir;
  try {
    dir = store::key_dir();
  } catch (const store::KeyError&) {
    return {};
  }
  std::string acc;
  auto add = [&acc](const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return;
    acc += p.filename().string() + ':' + std::to_string(st.st_size) + ',' + std::to_string(st.st_ino) + ',' +
           std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) + ',' +
           std::to_string(st.st_ctim.tv_sec) + '.' + std::to_string(st.st_ctim.tv_nsec) + ';';
  };
  add(dir / "host_key.pem");
  add(dir / "host_key.pub.pem");
  add(dir / "retired");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir / "retired", ec)) add(e.path());
  return acc;
}

json VerifyCache::check(const fs::path& bundle) {
  return check(bundle, read_text(bundle / "manifest.json"));
}

json VerifyCache::check(const fs::path& bundle, const std::string& manifest_text) {
  const std::string id = bundle.filename().string();
  const std::string fp = store::bundle_fingerprint(bundle);
  const std::string keys_fp = host_keys_fingerprint();
  const std::string manifest_sha = core::sha256_hex(manifest_text);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(id);
    if (it != cache_.end() && it->second.fingerprint == fp && it->second.keys == keys_fp &&
        it->second.manifest_sha256 == manifest_sha && now - it->second.verified < kReverify)
      return it->second.result;
  }
  store::KeyRing keys;
  try {
    keys = store::KeyRing::of_dir(store::key_dir());
  } catch (const store::KeyError&) {
  }
  store::BundleCheck c = store::verify_settled(bundle, keys);
  // The whole check, as `cp-host runs verify --json` prints it: a viewer's `runs verify --server` shows it.
  json r = store::check_json(id, c);
  // A live run changes with every event: only a settled answer is worth keeping, and only for the
  // manifest the caller shows (read again: it may have changed while the bundle was verified).
  if (c.state != store::BundleCheck::State::live &&
      core::sha256_hex(read_text(bundle / "manifest.json")) == manifest_sha) {
    std::lock_guard lock(mu_);
    if (cache_.size() > 100000) cache_.clear();  // a bound; entries are rebuilt on demand
    cache_[id] = {fp, keys_fp, manifest_sha, now, r};
  }
  return r;
}

}  // namespace cp::serve
