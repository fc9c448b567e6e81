// The host's signing key: an Ed25519 key (OpenSSL) that signs every run's seal, so that whoever can write
// a bundle but not read this key cannot make a changed bundle verify. The key lives outside the runtime
// root, in a folder every run's sandbox hides:
//
//   <key dir>/host_key.pem             the private key (PKCS#8 PEM), mode 0600, made on first use
//   <key dir>/host_key.pub.pem         its public key (SubjectPublicKeyInfo PEM), for `cp-host keys export`
//   <key dir>/retired/<key_id>.pub.pem public keys of rotated keys: older seals still verify
//
// A key is named by its key id: the first 32 hex digits of sha256 over the 32 raw public-key bytes.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cp::store {

// A key that cannot be made, read or used; the message names the file and how to fix it.
struct KeyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The key folder: set_key_dir()'s, else $CP_HOST_KEY_DIR, else $XDG_CONFIG_HOME/cp-host/keys, else
// ~/.config/cp-host/keys ($HOME, else the user's home in the password database). Throws KeyError when none
// can be named.
std::filesystem::path key_dir();
void set_key_dir(const std::filesystem::path& dir);  // `--key-dir`; empty restores the default

// An Ed25519 public key and its id.
class PublicKey {
 public:
  // From PEM text (SubjectPublicKeyInfo); throws KeyError naming `origin` when it is not an Ed25519 key.
  static PublicKey from_pem(std::string_view pem, const std::string& origin);
  const std::string& key_id() const { return id_; }
  const std::string& pem() const { return pem_; }
  std::string raw_base64() const;
  // True when `signature_b64` is this key's signature of `message`.
  bool verify(std::string_view message, std::string_view signature_b64) const;

 private:
  std::string id_, pem_, raw_;  // raw_: the 32 key bytes
};

// The private key: loads it, or makes it (race-free across processes) when the folder has none.
class HostKey {
 public:
  // Throws KeyError: the folder cannot be made, the key file is readable by others (mode not 0600: fix
  // with chmod 600), or it is not an Ed25519 private key.
  static std::shared_ptr<const HostKey> load_or_create(const std::filesystem::path& dir);
  // The process's key from key_dir(), loaded once.
  static std::shared_ptr<const HostKey> current();
  // Forgets the cached key (after a rotation, or a key_dir change).
  static void reset_current();
  ~HostKey();

  const PublicKey& public_key() const { return pub_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string sign(std::string_view message) const;  // base64 signature

 private:
  HostKey() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*, kept out of this header
  PublicKey pub_;
  std::filesystem::path dir_;
};

// Keys a verifier trusts, by key id.
class KeyRing {
 public:
  // The host's current and retired public keys (an empty ring when the folder holds none).
  static KeyRing of_dir(const std::filesystem::path& dir);
  // The keys in PEM files someone was given (`runs verify --key PUB`); throws KeyError.
  static KeyRing of_files(const std::vector<std::filesystem::path>& files);
  void add(PublicKey k);
  const PublicKey* find(const std::string& key_id) const;
  bool empty() const { return keys_.empty(); }
  std::string origin;  // where the keys came from, for messages

 private:
  std::map<std::string, PublicKey> keys_;
};

// `cp-host keys rotate`: the current public key goes to retired/, the private key is deleted, a new one is
// made. Returns the new key. Throws KeyError.
std::shared_ptr<const HostKey> rotate_key(const std::filesystem::path& dir);

}  // namespace cp::store
