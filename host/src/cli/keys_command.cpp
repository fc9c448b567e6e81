// `cp-host keys show|rotate|export`: the host key that signs every run's seal (store/host_key.hpp).
#include "cli/commands.hpp"
#include "store/atomic_file.hpp"
#include "store/host_key.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct KeysOpts {
  bool json = false;
  std::string out;
};

std::vector<std::string> retired_ids(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir / "retired", ec)) {
    std::string n = e.path().filename().string();
    const std::string suffix = ".pub.pem";
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(n.substr(0, n.size() - suffix.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

int show(const KeysOpts& o, bool rotate) {
  try {
    fs::path dir = store::key_dir();
    std::shared_ptr<const store::HostKey> key;
    std::string old_id;
    if (rotate) {
      old_id = store::HostKey::load_or_create(dir)->public_key().key_id();
      key = store::rotate_key(dir);
    } else {
      key = store::HostKey::load_or_create(dir);
    }
    const auto& pub = key->public_key();
    if (o.json) {
      json j{{"key_id", pub.key_id()},
             {"algorithm", "ed25519"},
             {"key_dir", dir.string()},
             {"public_key_pem", pub.pem()},
             {"retired", retired_ids(dir)}};
      if (rotate) j["rotated_from"] = old_id;
      std::cout << j.dump(2) << "\n";
      return kOk;
    }
    if (rotate)
      std::cout << "rotated   " << old_id << " -> " << pub.key_id()
                << " (the old private key is deleted; its public key stays in retired/ so older seals "
                   "still verify)\n";
    std::cout << "key id    " << pub.key_id() << "\n"
              << "algorithm ed25519\n"
              << "folder    " << dir.string() << "\n";
    for (const auto& id : retired_ids(dir)) std::cout << "retired   " << id << "\n";
    std::cout << pub.pem();
    return kOk;
  } catch (const store::KeyError& e) {
    std::cerr << "cp-host keys: " << e.what() << "\n";
    return kInternal;
  }
}

int export_key(const KeysOpts& o) {
  try {
    auto key = store::HostKey::load_or_create(store::key_dir());
    if (o.out.empty()) {
      std::cout << key->public_key().pem();
    } else {
      store::write_atomic(o.out, key->public_key().pem());
      std::cerr << "wrote the public key " << key->public_key().key_id() << " to " << o.out << "\n";
    }
    return kOk;
  } catch (const store::KeyError& e) {
    std::cerr << "cp-host keys export: " << e.what() << "\n";
    return kInternal;
  } catch (const std::exception& e) {
    std::cerr << "cp-host keys export: cannot write " << o.out << ": " << e.what() << "\n";
    return kUsage;
  }
}

}  // namespace

void add_keys(CLI::App& app, Runner& run) {
  auto o = std::make_shared<KeysOpts>();
  auto* keys = app.add_subcommand(
      "keys",
      "The host key (Ed25519) that signs every run's seal. It lives in --key-dir (default "
      "$CP_HOST_KEY_DIR, else ~/.config/cp-host/keys), mode 0600, made on first use; runs cannot read it. "
      "Without it nobody can make a changed bundle pass `cp-host runs verify`");
  keys->require_subcommand(1);
  auto* sh = keys->add_subcommand("show", "Print the key id, its folder, retired key ids and the public key");
  sh->add_flag("--json", o->json, "Machine-readable output");
  sh->callback([&run, o] { run = [o] { return show(*o, false); }; });
  auto* rot = keys->add_subcommand(
      "rotate",
      "Make a new key: the old private key is deleted and its public key kept under retired/, so the seals "
      "it "
      "made still verify here (send the new public key to whoever verifies your bundles)");
  rot->add_flag("--json", o->json, "Machine-readable output");
  rot->callback([&run, o] { run = [o] { return show(*o, true); }; });
  auto* ex = keys->add_subcommand(
      "export", "Print the public key (PEM) for others to verify bundles with `cp-host runs verify --key`");
  ex->add_option("--out", o->out, "Write it to this file instead");
  ex->callback([&run, o] { run = [o] { return export_key(*o); }; });
}

}  // namespace cp::cli
