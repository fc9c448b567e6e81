#include "store/host_key.hpp"

#include "core/sha256.hpp"
#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace cp::store {

namespace fs = std::filesystem;

namespace {

std::mutex g_mu;
fs::path g_dir;                             // set_key_dir()
std::shared_ptr<const HostKey> g_current;   // HostKey::current()
constexpr size_t kMaxPemBytes = 64 * 1024;  // a PEM key is a few hundred bytes

// A key file or folder is trusted only when it is this user's and nobody else can write it (as ssh's
// StrictModes): a key someone else could replace would sign, or verify, for them.
void check_owner(const fs::path& p, bool folder) {
  struct stat st {};
  int rc = folder ? ::stat(p.c_str(), &st) : ::lstat(p.c_str(), &st);
  if (rc != 0) throw KeyError("cannot read " + p.string() + ": " + std::strerror(errno));
  if (folder ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
    throw KeyError(p.string() + (folder ? " is not a folder" : " is not a regular file"));
  if (st.st_uid != ::geteuid())
    throw KeyError(p.string() + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user (uid " +
                   std::to_string(::geteuid()) + "); a key must be the signer's own");
  if ((st.st_mode & 022) != 0)
    throw KeyError(p.string() + " can be written by others; chmod go-w " + p.string());
}

std::string read_small(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  if (!in) throw KeyError("cannot read " + f.string());
  std::string s(kMaxPemBytes + 1, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(in.gcount()));
  if (s.size() > kMaxPemBytes) throw KeyError(f.string() + " is too large to be a key");
  return s;
}

std::string b64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool unb64(std::string_view text, std::string& raw) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4096) return false;
  for (char c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') return false;
  raw.assign(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return false;
  size_t pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : text.back() == '=' ? 1 : 0;
  raw.resize(static_cast<size_t>(n) - pad);
  return true;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string raw_public(EVP_PKEY* k) {
  std::string raw(32, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(k, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 || len != 32)
    throw KeyError("cannot read the raw Ed25519 public key");
  return raw;
}

std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || PEM_write_bio_PUBKEY(bio, k) != 1) {
    BIO_free(bio);
    throw KeyError("cannot write a public key as PEM");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

PublicKey make_public(EVP_PKEY* k) {
  return PublicKey::from_pem(public_pem(k), "the host key");
}

}  // namespace

fs::path key_dir() {
  {
    std::lock_guard lock(g_mu);
    if (!g_dir.empty()) return g_dir;
  }
  if (const char* e = std::getenv("CP_HOST_KEY_DIR"); e && *e) return fs::absolute(e);
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x && fs::path(x).is_absolute())
    return fs::path(x) / "cp-host" / "keys";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".config" / "cp-host" / "keys";
  // No HOME (a service, a bare CI step): the user's home from the password database.
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_dir && *pw->pw_dir)
    return fs::path(pw->pw_dir) / ".config" / "cp-host" / "keys";
  throw KeyError("no folder for the host key: set HOME, CP_HOST_KEY_DIR or --key-dir");
}

void set_key_dir(const fs::path& dir) {
  std::lock_guard lock(g_mu);
  g_dir = dir.empty() ? dir : fs::absolute(dir);
  g_current.reset();
}

PublicKey PublicKey::from_pem(std::string_view pem, const std::string& origin) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Pkey k(bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr);
  BIO_free(bio);
  if (!k || EVP_PKEY_get_id(k.get()) != EVP_PKEY_ED25519)
    throw KeyError(origin + " is not an Ed25519 public key in PEM form (`cp-host keys export` writes one)");
  PublicKey p;
  p.raw_ = raw_public(k.get());
  p.id_ = core::sha256_hex(p.raw_).substr(0, 32);
  p.pem_ = public_pem(k.get());
  return p;
}

std::string PublicKey::raw_base64() const {
  return b64(raw_);
}

bool PublicKey::verify(std::string_view message, std::string_view signature_b64) const {
  std::string sig;
  if (!unb64(signature_b64, sig) || sig.size() != 64) return false;
  Pkey k(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                     reinterpret_cast<const unsigned char*>(raw_.data()), raw_.size()));
  if (!k) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k.get()) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

HostKey::~HostKey() {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
}

std::shared_ptr<const HostKey> HostKey::load_or_create(const fs::path& dir) {
  std::error_code ec;
  bool made = fs::create_directories(dir, ec);
  if (ec) throw KeyError("cannot make the key folder " + dir.string() + ": " + ec.message());
  if (made) ::chmod(dir.c_str(), 0700);  // a folder found here is checked as it is, never loosened or fixed
  check_owner(dir, true);
  const fs::path file = dir / "host_key.pem";
  if (!fs::exists(file, ec)) {
    // Made under a temporary name, then linked into place: of two processes making the first key at once,
    // one wins and the other reads the winner's.
    Pkey k;
    EVP_PKEY* raw = nullptr;
    EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
    if (!kctx || EVP_PKEY_keygen_init(kctx) != 1 || EVP_PKEY_keygen(kctx, &raw) != 1) {
      EVP_PKEY_CTX_free(kctx);
      throw KeyError("cannot generate an Ed25519 key");
    }
    EVP_PKEY_CTX_free(kctx);
    k.reset(raw);
    fs::path tmp = dir / (".host_key.pem." + std::to_string(::getpid()));
    fs::remove(tmp, ec);  // a leftover of a crashed attempt by a process with this pid
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw KeyError("cannot write " + tmp.string() + ": " + std::strerror(errno));
    FILE* f = ::fdopen(fd, "w");
    bool ok = f && PEM_write_PrivateKey(f, k.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
              std::fflush(f) == 0 && ::fsync(fd) == 0;
    if (f)
      std::fclose(f);
    else
      ::close(fd);
    if (!ok || (::link(tmp.c_str(), file.c_str()) != 0 && errno != EEXIST)) {
      fs::remove(tmp, ec);
      throw KeyError("cannot write the host key " + file.string());
    }
    fs::remove(tmp, ec);
    fsync_dir(dir);
  }
  check_owner(file, false);
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw KeyError(file.string() + " is not a regular file");
  if ((st.st_mode & 077) != 0)
    throw KeyError(file.string() + " is readable by others (mode " +
                   [&] {
                     std::ostringstream o;
                     o << std::oct << (st.st_mode & 0777);
                     return o.str();
                   }() +
                   "); a signing key must be private: chmod 600 " + file.string());
  std::string pem = read_small(file);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(k);
    throw KeyError(file.string() + " is not an Ed25519 private key; move it away and a new key is made");
  }
  std::shared_ptr<HostKey> h(new HostKey());
  h->pkey_ = k;
  h->pub_ = make_public(k);
  h->dir_ = dir;
  const fs::path pub = dir / "host_key.pub.pem";
  std::string have;
  try {
    have = read_small(pub);
  } catch (const KeyError&) {
  }
  if (have != h->pub_.pem()) write_atomic(pub, h->pub_.pem());
  return h;
}

std::shared_ptr<const HostKey> HostKey::current() {
  fs::path dir = key_dir();
  std::lock_guard lock(g_mu);
  if (!g_current || g_current->dir() != dir) g_current = load_or_create(dir);
  return g_current;
}

void HostKey::reset_current() {
  std::lock_guard lock(g_mu);
  g_current.reset();
}

std::string HostKey::sign(std::string_view message) const {
  unsigned char sig[64];
  size_t len = sizeof sig;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(pkey_)) == 1 &&
            EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                           message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || len != 64) throw KeyError("signing with the host key failed");
  return b64(std::string_view(reinterpret_cast<const char*>(sig), len));
}

void KeyRing::add(PublicKey k) {
  std::string id = k.key_id();
  keys_.insert_or_assign(id, std::move(k));
}

const PublicKey* KeyRing::find(const std::string& key_id) const {
  auto it = keys_.find(key_id);
  return it == keys_.end() ? nullptr : &it->second;
}

KeyRing KeyRing::of_dir(const fs::path& dir) {
  KeyRing r;
  r.origin = "the host keys in " + dir.string();
  std::error_code ec;
  // The current key's public half comes from the private key when it is there (the .pub file is a copy).
  if (fs::exists(dir / "host_key.pem", ec)) {
    try {
      r.add(HostKey::load_or_create(dir)->public_key());
    } catch (const KeyError&) {
    }
  }
  try {
    check_owner(dir, true);
  } catch (const KeyError&) {
    return r;  // someone else's folder: nothing in it is trusted
  }
  std::vector<fs::path> pubs{dir / "host_key.pub.pem"};
  for (const auto& e : fs::directory_iterator(dir / "retired", ec)) pubs.push_back(e.path());
  for (const auto& p : pubs) {
    try {
      check_owner(p, false);
      r.add(PublicKey::from_pem(read_small(p), p.string()));
    } catch (const KeyError&) {
    }
  }
  return r;
}

KeyRing KeyRing::of_files(const std::vector<fs::path>& files) {
  KeyRing r;
  for (const auto& f : files) {
    r.add(PublicKey::from_pem(read_small(f), f.string()));
    r.origin += (r.origin.empty() ? "" : ", ") + f.string();
  }
  return r;
}

std::shared_ptr<const HostKey> rotate_key(const fs::path& dir) {
  auto old = HostKey::load_or_create(dir);
  std::error_code ec;
  fs::create_directories(dir / "retired", ec);
  write_atomic(dir / "retired" / (old->public_key().key_id() + ".pub.pem"), old->public_key().pem());
  // The retired private key is deleted: nothing may sign with it again; its public half still verifies
  // the seals it made.
  if (!fs::remove(dir / "host_key.pem", ec) || ec)
    throw KeyError("cannot remove the old key " + (dir / "host_key.pem").string() + ": " + ec.message());
  fsync_dir(dir);
  HostKey::reset_current();
  return HostKey::load_or_create(dir);
}

}  // namespace cp::store
